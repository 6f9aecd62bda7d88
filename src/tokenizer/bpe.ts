/**
 * The sentencepiece-style BPE tokenizer of llama2.c, for both vocabulary
 * conventions (" " in llama2.c's tokenizer.bin, "▁" in GGUF).
 *
 * encode, as llama2.c's run.c does it:
 *   1. optional BOS;
 *   2. when the text is non-empty, a leading space (the "dummy prefix"),
 *      as its own token;
 *   3. each UTF-8 code point looked up as a piece; one that is not in the
 *      vocabulary falls back to one "<0xNN>" token per byte;
 *   4. repeatedly merge the adjacent pair whose concatenated piece has the
 *      highest score (leftmost on ties) until no pair is in the vocabulary;
 *   5. optional EOS.
 * Step 4 runs with a heap over a linked list (O(n log n)); popping the best
 * score and, among equals, the smallest left position picks exactly the
 * pair run.c's quadratic scan picks.
 *
 * decode(prev, token) gives a token's text: "▁" becomes " ", the leading
 * space is dropped right after BOS, "<0xNN>" becomes that byte. A byte may
 * be part of a multi-byte character, so streams of tokens go through
 * DecodeStream, which holds incomplete UTF-8 until the rest arrives.
 */
import type { Vocabulary } from "../formats/types.ts";
import { SeerError } from "../errors.ts";
import { TokenType } from "./tokenizer_bin.ts";

export interface EncodeOptions {
  /** Prepend BOS (default: the vocabulary's addBos, else true). */
  bos?: boolean;
  /** Append EOS (default false). */
  eos?: boolean;
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

/** run.c merges only pairs scoring above its initial best of -1e10. */
const MIN_MERGE_SCORE = -1e10;

export class Tokenizer {
  readonly vocab: Vocabulary;
  readonly size: number;
  readonly #ids = new Map<string, number>();
  /** Token id for each byte value, -1 when the vocabulary lacks it. */
  readonly #byteIds = new Int32Array(256).fill(-1);
  /** Whether a pair may merge into this token (not control/unknown/byte). */
  readonly #mergeable: Uint8Array;
  /** Decoded bytes of each token, and of each token right after BOS. */
  readonly #pieces: Uint8Array[];
  readonly #afterBos: Uint8Array[];
  readonly #unk: number;

  constructor(vocab: Vocabulary) {
    this.vocab = vocab;
    this.size = vocab.tokens.length;
    const marker = vocab.spaceMarker;
    vocab.tokens.forEach((t, i) => {
      // First id wins for a duplicated piece, so lookups are deterministic.
      if (!this.#ids.has(t)) this.#ids.set(t, i);
    });
    for (let b = 0; b < 256; b++) {
      const name = `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
      this.#byteIds[b] = this.#ids.get(name) ?? -1;
    }
    const types = vocab.types;
    this.#mergeable = new Uint8Array(this.size).fill(1);
    if (types) {
      for (let i = 0; i < this.size; i++) {
        const t = types[i];
        if (
          t === TokenType.control || t === TokenType.unknown ||
          t === TokenType.byte
        ) {
          this.#mergeable[i] = 0;
        }
      }
    }
    const unkType = types ? types.indexOf(TokenType.unknown) : -1;
    this.#unk = unkType >= 0 ? unkType : (this.#ids.get("<unk>") ?? 0);

    this.#pieces = new Array(this.size);
    this.#afterBos = new Array(this.size);
    for (let i = 0; i < this.size; i++) {
      let text = vocab.tokens[i];
      if (marker === "▁") text = text.replaceAll("▁", " ");
      // Control tokens (known from GGUF types) have no text, as in
      // sentencepiece and llama.cpp; llama2.c's vocabulary has no types,
      // so there they print their piece, as run.c does.
      if (types && types[i] === TokenType.control) text = "";
      const stripped = text.startsWith(" ") ? text.slice(1) : text;
      this.#pieces[i] = pieceBytes(text);
      this.#afterBos[i] = pieceBytes(stripped);
    }
  }

  /** The id of a piece (in the vocabulary's own spelling), or -1. */
  id(piece: string): number {
    return this.#ids.get(piece) ?? -1;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const v = this.vocab;
    const out: number[] = [];
    if (options.bos ?? v.addBos ?? true) out.push(v.bosId);
    const ids: number[] = [];
    const marker = v.spaceMarker;
    if (marker === "▁") text = text.replaceAll(" ", "▁");
    if (text.length > 0 && (v.addSpacePrefix ?? true)) {
      this.#symbol(marker, ids);
    }
    for (const ch of text) this.#symbol(ch, ids);
    this.#merge(ids);
    for (const id of ids) out.push(id);
    if (options.eos) out.push(v.eosId);
    return out;
  }

  /** One code point: its piece, else its UTF-8 bytes as byte tokens. */
  #symbol(ch: string, out: number[]): void {
    const id = this.#ids.get(ch);
    if (id !== undefined) {
      out.push(id);
      return;
    }
    for (const b of utf8.encode(ch)) {
      const byteId = this.#byteIds[b];
      out.push(byteId >= 0 ? byteId : this.#unk);
    }
  }

  /** Best-score-first pair merging, in place. */
  #merge(ids: number[]): void {
    const n = ids.length;
    if (n < 2) return;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const alive = new Uint8Array(n).fill(1);
    const heap = new PairHeap();
    const tokens = this.vocab.tokens;
    const scores = this.vocab.scores;
    const consider = (left: number) => {
      if (left < 0) return;
      const right = next[left];
      if (right < 0) return;
      const merged = this.#ids.get(tokens[ids[left]] + tokens[ids[right]]);
      if (merged === undefined || !this.#mergeable[merged]) return;
      const score = scores[merged];
      if (!(score > MIN_MERGE_SCORE)) return;
      heap.push({
        score,
        left,
        right,
        leftId: ids[left],
        rightId: ids[right],
        merged,
      });
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    for (let p = heap.pop(); p !== undefined; p = heap.pop()) {
      // Skip pairs that an earlier merge changed or split.
      if (
        !alive[p.left] || !alive[p.right] || next[p.left] !== p.right ||
        ids[p.left] !== p.leftId || ids[p.right] !== p.rightId
      ) continue;
      ids[p.left] = p.merged;
      alive[p.right] = 0;
      next[p.left] = next[p.right];
      if (next[p.right] >= 0) prev[next[p.right]] = p.left;
      consider(prev[p.left]);
      consider(p.left);
    }
    let k = 0;
    for (let i = 0; i >= 0 && i < n; i = next[i]) ids[k++] = ids[i];
    ids.length = k;
  }

  /** The bytes of `token` following `prev`, as run.c's decode returns them. */
  decodeBytes(prev: number, token: number): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.size) {
      throw new SeerError(
        "invalid_argument",
        `token id ${token} is outside the vocabulary (0..${this.size - 1})`,
      );
    }
    return prev === this.vocab.bosId
      ? this.#afterBos[token]
      : this.#pieces[token];
  }

  /**
   * The text of `token` following `prev`. A lone byte token that is part
   * of a multi-byte character decodes to U+FFFD here; use DecodeStream to
   * print a sequence.
   */
  decode(prev: number, token: number): string {
    return new TextDecoder().decode(this.decodeBytes(prev, token));
  }

  /** Text of a whole sequence whose first token is `tokens[0]` (not printed). */
  decodeAll(tokens: readonly number[], options: DecodeStreamOptions = {}) {
    const s = new DecodeStream(this, options);
    let text = "";
    for (let i = 1; i < tokens.length; i++) {
      text += s.next(tokens[i - 1], tokens[i]);
    }
    return text + s.flush();
  }
}

export interface DecodeStreamOptions {
  /**
   * Drop single-byte pieces that are ASCII control characters other than
   * whitespace, as run.c's safe_printf does (bytes 0x80-0xFF are kept: they
   * are parts of UTF-8 characters, which run.c would drop).
   */
  safe?: boolean;
}

/**
 * Turns a token stream into text, holding back the bytes of a character
 * split across tokens until it is complete.
 */
export class DecodeStream {
  readonly #decoder = new TextDecoder("utf-8");
  readonly #safe: boolean;
  constructor(
    readonly tokenizer: Tokenizer,
    options: DecodeStreamOptions = {},
  ) {
    this.#safe = options.safe ?? false;
  }

  next(prev: number, token: number): string {
    const bytes = this.tokenizer.decodeBytes(prev, token);
    if (this.#safe && bytes.length === 1 && !printable(bytes[0])) return "";
    return this.#decoder.decode(bytes, { stream: true });
  }

  /** Whatever is held back (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.#decoder.decode();
  }
}

/** C's isprint || isspace in the "C" locale, plus bytes of UTF-8 sequences. */
function printable(b: number): boolean {
  return (b >= 0x20 && b < 0x7f) || (b >= 0x09 && b <= 0x0d) || b >= 0x80;
}

function pieceBytes(text: string): Uint8Array {
  const m = BYTE_PIECE.exec(text);
  if (m) return Uint8Array.of(parseInt(m[1], 16));
  return utf8.encode(text);
}

interface Pair {
  score: number;
  left: number;
  right: number;
  leftId: number;
  rightId: number;
  merged: number;
}

/** Max-heap on score, then min on left position. */
class PairHeap {
  #a: Pair[] = [];

  #before(x: Pair, y: Pair): boolean {
    return x.score > y.score || (x.score === y.score && x.left < y.left);
  }

  push(p: Pair): void {
    const a = this.#a;
    a.push(p);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(a[i], a[parent])) break;
      [a[i], a[parent]] = [a[parent], a[i]];
      i = parent;
    }
  }

  pop(): Pair | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < a.length && this.#before(a[l], a[best])) best = l;
        if (r < a.length && this.#before(a[r], a[best])) best = r;
        if (best === i) break;
        [a[i], a[best]] = [a[best], a[i]];
        i = best;
      }
    }
    return top;
  }
}
