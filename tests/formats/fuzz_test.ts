/**
 * Seeded mutation fuzzing of every reader: byte flips, hostile field
 * values, truncations, insertions and deletions, aimed mostly at the bytes
 * that carry structure (headers, metadata, tensor infos). Each mutated file
 * must either load into a model whose every tensor fits its config and the
 * file, or be refused with SeerError("invalid_model") naming the file.
 * Anything else (RangeError, TypeError, a hang) fails the test.
 */
import assert from "node:assert/strict";
import { parseModel } from "../../src/formats/load.ts";
import { llamaGgufSpec, parseGguf, writeGguf } from "../../src/formats/gguf.ts";
import { writeLlama2c } from "../../src/formats/llama2c.ts";
import {
  readTokenizerBin,
  toSentencepieceVocabulary,
} from "../../src/tokenizer/tokenizer_bin.ts";
import { Tokenizer } from "../../src/tokenizer/bpe.ts";
import { checkConfig, checkTensors } from "../../src/formats/validate.ts";
import type { ModelFile, Vocabulary } from "../../src/formats/types.ts";
import { SeerError } from "../../src/errors.ts";
import { testRng } from "../helpers.ts";
import { model, namedTensors, tinyModel, tinyVocabulary } from "./fixtures.ts";

type Rand = () => number;

/** SEER_FUZZ_SCALE=50 runs 50× the cases (with other seeds) for a deeper search. */
const SCALE = Number(Deno.env.get("SEER_FUZZ_SCALE") ?? 1);

const INTERESTING = [
  0,
  1,
  2,
  3,
  7,
  31,
  32,
  33,
  255,
  256,
  4096,
  65535,
  65536,
  0x7fffffff,
  0x80000000,
  0xfffffffe,
  0xffffffff,
];

/** One random mutation of `b`, mostly inside its first `hot` bytes. */
function mutate(b: Uint8Array, hot: number, rand: Rand): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  const where = () => (rand() < 0.85 ? int(Math.max(1, hot)) : int(b.length));
  switch (int(5)) {
    case 0: { // flip a few bytes
      const out = b.slice();
      for (let k = 1 + int(8); k > 0; k--) out[where()] ^= 1 + int(255);
      return out;
    }
    case 1: { // a hostile u32 or u64 at an aligned spot
      const out = b.slice();
      const d = new DataView(out.buffer);
      const at = where() & ~3;
      const v = INTERESTING[int(INTERESTING.length)];
      if (rand() < 0.5 && at + 8 <= out.length) {
        d.setBigUint64(at, BigInt(v) * (rand() < 0.3 ? 1n << 32n : 1n), true);
      } else if (at + 4 <= out.length) d.setUint32(at, v, true);
      return out;
    }
    case 2: // truncate
      return b.slice(0, rand() < 0.5 ? where() : int(b.length));
    case 3: { // insert random bytes
      const at = where(), n = 1 + int(16);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at));
      for (let i = 0; i < n; i++) out[at + i] = int(256);
      out.set(b.subarray(at), at + n);
      return out;
    }
    default: { // delete a few bytes
      const at = where(), n = 1 + int(16);
      const out = new Uint8Array(Math.max(0, b.length - n));
      out.set(b.subarray(0, at));
      out.set(b.subarray(Math.min(b.length, at + n)), at);
      return out;
    }
  }
}

/** Everything a consumer may rely on in a model that loaded. */
function assertConsistent(m: ModelFile, bytes: Uint8Array) {
  checkConfig(m.config, m.source);
  checkTensors(m);
  for (const [name, t] of namedTensors(m)) {
    assert.equal(
      t.data.buffer,
      bytes.buffer,
      `${name} is not a view of the file`,
    );
    assert.ok(
      t.data.byteOffset + t.data.byteLength <=
        bytes.byteOffset + bytes.byteLength,
    );
  }
  if (m.vocabulary) assertVocabulary(m.vocabulary);
}

function assertVocabulary(v: Vocabulary) {
  const n = v.tokens.length;
  assert.equal(v.scores.length, n);
  if (v.types) assert.equal(v.types.length, n);
  assert.ok(v.bosId >= 0 && v.bosId < n && v.eosId >= 0 && v.eosId < n);
  const tok = new Tokenizer(v);
  const ids = tok.encode("Once upon a time 😀 日本", { bos: true, eos: true });
  assert.ok(ids.every((i) => Number.isInteger(i) && i >= 0 && i < n));
  tok.decodeAll(ids);
}

function fuzz(
  name: string,
  base: Uint8Array,
  hot: number,
  cases: number,
  seed: number,
  parse: (b: Uint8Array, source: string) => void,
) {
  const rand = testRng(seed * SCALE);
  cases *= SCALE;
  let refused = 0;
  for (let i = 0; i < cases; i++) {
    const bytes = mutate(base, hot, rand);
    const source = `${name}#${i}`;
    try {
      parse(bytes, source);
    } catch (e) {
      if (
        !(e instanceof SeerError) || e.code !== "invalid_model" ||
        !e.message.startsWith(`${source}: `)
      ) {
        throw new Error(
          `${source}: escaped with ${e instanceof Error ? e.stack : e}`,
        );
      }
      refused++;
    }
  }
  // The mutations must mostly hit structure, or the test proves little.
  assert.ok(
    refused >= cases * 0.3,
    `${name}: only ${refused}/${cases} refused`,
  );
  return refused;
}

const parseChecked = (b: Uint8Array, source: string) =>
  assertConsistent(parseModel(b, source), b);

Deno.test("fuzz: llama2.c checkpoints", () => {
  const real = Deno.readFileSync(model("stories260K.bin"));
  fuzz("stories260K.bin", real, 28, 80, 1, parseChecked);
  fuzz(
    "tiny-unshared.bin",
    writeLlama2c(tinyModel({}, false)),
    28,
    60,
    2,
    parseChecked,
  );
});

Deno.test("fuzz: GGUF files", () => {
  const real = Deno.readFileSync(model("stories260K-q8_0.gguf"));
  fuzz(
    "stories260K-q8_0.gguf",
    real,
    parseGguf(real, "q8").dataOffset,
    120,
    3,
    parseChecked,
  );
  const tiny = writeGguf(
    llamaGgufSpec(
      tinyModel(),
      toSentencepieceVocabulary(tinyVocabulary(300)),
      { name: "tiny" },
    ),
  );
  fuzz(
    "tiny.gguf",
    tiny,
    parseGguf(tiny, "t").dataOffset,
    120,
    4,
    parseChecked,
  );
});

Deno.test("fuzz: tokenizer.bin", () => {
  const real = Deno.readFileSync(model("tok512.bin"));
  fuzz(
    "tok512.bin",
    real,
    real.length,
    60,
    5,
    (b, source) => assertVocabulary(readTokenizerBin(b, source)),
  );
});
