/**
 * llama2.c's tokenizer.bin: an int32 max_token_length, then for each token
 * an f32 merge score, an int32 byte length and that many UTF-8 bytes. The
 * file does not record the token count (the model's vocab_size does), so
 * tokens are read to the end of the file and checkVocabulary compares the
 * count with the model's. Spaces are plain " "; ids 0/1/2 are <unk>, BOS,
 * EOS, then 256 byte tokens "<0x00>".."<0xFF>".
 */
import type { Vocabulary } from "../formats/types.ts";
import { ByteReader } from "../formats/bytes.ts";
import { LIMITS } from "../formats/validate.ts";

/** Reads a tokenizer.bin; `source` names it in errors. */
export function readTokenizerBin(
  bytes: Uint8Array,
  source: string,
): Vocabulary {
  const r = new ByteReader(bytes, source);
  const maxLen = r.i32("max_token_length");
  if (maxLen < 1 || maxLen > 1 << 16) {
    throw r.fail(
      `max_token_length is ${maxLen}; a llama2.c tokenizer.bin starts with a length from 1 to 65536. ` +
        `This is not a tokenizer.bin (a model file passed as the tokenizer?)`,
    );
  }
  const tokens: string[] = [];
  const scores: number[] = [];
  while (r.remaining > 0) {
    const i = tokens.length;
    if (i >= LIMITS.vocabSize) {
      throw r.fail(`more than ${LIMITS.vocabSize} tokens; the file is corrupt`);
    }
    const score = r.f32(`score of token ${i}`);
    const at = r.pos;
    const len = r.i32(`length of token ${i}`);
    if (len < 0 || len > maxLen) {
      throw r.fail(
        `token ${i} has length ${len} (at byte ${at}), outside 0..max_token_length (${maxLen}); the file is corrupt or not a tokenizer.bin`,
      );
    }
    if (Number.isNaN(score)) throw r.fail(`token ${i} has a NaN score`);
    tokens.push(r.utf8(len, `token ${i}`));
    scores.push(score);
  }
  if (tokens.length < 3) {
    throw r.fail(
      `only ${tokens.length} tokens; llama2.c vocabularies start with <unk>, BOS and EOS`,
    );
  }
  return {
    tokens,
    scores: Float32Array.from(scores),
    bosId: 1,
    eosId: 2,
    spaceMarker: " ",
  };
}

/** Token types as sentencepiece and GGUF number them. */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  byte: 6,
} as const;

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/**
 * A llama2.c vocabulary in sentencepiece/GGUF conventions, as llama.cpp's
 * converter writes it: "▁" for spaces, ids 0/1/2 named <unk>/<s>/</s>,
 * token types (unknown, control, byte, normal). Scores are unchanged.
 */
export function toSentencepieceVocabulary(v: Vocabulary): Vocabulary {
  if (v.spaceMarker === "▁") return v;
  const types = new Int32Array(v.tokens.length);
  const tokens = v.tokens.map((t, i) => {
    if (i === 0) {
      types[i] = TokenType.unknown;
      return "<unk>";
    }
    if (i === v.bosId) {
      types[i] = TokenType.control;
      return "<s>";
    }
    if (i === v.eosId) {
      types[i] = TokenType.control;
      return "</s>";
    }
    if (BYTE_PIECE.test(t)) {
      types[i] = TokenType.byte;
      return t;
    }
    types[i] = TokenType.normal;
    return t.replaceAll(" ", "▁");
  });
  return {
    tokens,
    scores: v.scores,
    types,
    bosId: v.bosId,
    eosId: v.eosId,
    spaceMarker: "▁",
  };
}
