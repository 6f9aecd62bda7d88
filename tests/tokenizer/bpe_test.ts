import assert from "node:assert/strict";
import { DecodeStream, Tokenizer } from "../../src/tokenizer/bpe.ts";
import { readTokenizerBin } from "../../src/tokenizer/tokenizer_bin.ts";
import type { Vocabulary } from "../../src/formats/types.ts";
import { model } from "../formats/fixtures.ts";
import { checkGoldenDecoding, checkGoldenEncoding } from "./golden.ts";
import { testRng } from "../helpers.ts";

const tok512 = readTokenizerBin(
  Deno.readFileSync(model("tok512.bin")),
  "tok512.bin",
);
const tok32k = readTokenizerBin(
  Deno.readFileSync(model("tokenizer.bin")),
  "tokenizer.bin",
);

/**
 * run.c's encode, transcribed literally (quadratic scan for the best pair,
 * byte fallback at id + 3): the independent twin of the heap-based encoder.
 */
function naiveEncode(v: Vocabulary, text: string, bos: boolean): number[] {
  const find = (s: string) => v.tokens.indexOf(s);
  const out: number[] = [];
  if (bos) out.push(1);
  if (text !== "") out.push(find(v.spaceMarker));
  const t = v.spaceMarker === "▁" ? text.replaceAll(" ", "▁") : text;
  for (const ch of t) {
    const id = find(ch);
    if (id !== -1) out.push(id);
    else for (const b of new TextEncoder().encode(ch)) out.push(b + 3);
  }
  for (;;) {
    let best = -1e10, bestId = -1, bestIdx = -1;
    for (let i = 0; i + 1 < out.length; i++) {
      const id = find(v.tokens[out[i]] + v.tokens[out[i + 1]]);
      if (id !== -1 && v.scores[id] > best) {
        best = v.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    out.splice(bestIdx, 2, bestId);
  }
  return out;
}

Deno.test("bpe: golden prompts encode as run.c did (tok512.bin)", () => {
  checkGoldenEncoding(tok512);
});

Deno.test("bpe: golden token sequences decode to run.c's stdout (tok512.bin)", () => {
  checkGoldenDecoding(tok512);
});

Deno.test("bpe: the heap encoder equals run.c's quadratic scan on random text", () => {
  const rand = testRng(42);
  const alphabet = [
    ..." eeetaoinshrdlu,.!?\nTHEtheAnd",
    "é",
    "日",
    "😀",
    "\u0301",
  ];
  for (const [vocab, cases] of [[tok512, 60], [tok32k, 15]] as const) {
    const tok = new Tokenizer(vocab);
    for (let c = 0; c < cases; c++) {
      let text = "";
      const len = Math.floor(rand() * 80);
      for (let i = 0; i < len; i++) {
        text += alphabet[Math.floor(rand() * alphabet.length)];
      }
      const bos = rand() < 0.5;
      assert.deepEqual(
        tok.encode(text, { bos }),
        naiveEncode(vocab, text, bos),
        JSON.stringify(text),
      );
    }
  }
});

Deno.test("bpe: the 32k vocabulary round-trips unicode through byte fallback", () => {
  const tok = new Tokenizer(tok32k);
  const texts = [
    "Hello, world!",
    "emoji 😀🦙 and a family 👨‍👩‍👧 (ZWJ)",
    "日本語のテキストと中文字符",
    "combining: e\u0301 a\u0308 n\u0303 \u0915\u093f",
    "  two leading spaces, tabs\tand\nnewlines\r\n",
    "\u0000\u0007 control bytes",
    "Ω≈ç√∫ µ≤≥÷ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
  ];
  for (const text of texts) {
    const ids = tok.encode(text, { bos: true });
    assert.equal(tok.decodeAll(ids), text, JSON.stringify(text));
  }
  // Characters outside the vocabulary really went through <0xNN> tokens.
  const ids = tok.encode("🦙", { bos: false });
  assert.deepEqual(
    ids.slice(1).map((i) => tok32k.tokens[i]),
    ["<0xF0>", "<0x9F>", "<0xA6>", "<0x99>"],
  );
});

Deno.test("bpe: a character split over byte tokens streams out whole", () => {
  const tok = new Tokenizer(tok32k);
  const ids = tok.encode("a😀", { bos: true });
  const s = new DecodeStream(tok);
  const parts = [];
  for (let i = 1; i < ids.length; i++) parts.push(s.next(ids[i - 1], ids[i]));
  parts.push(s.flush());
  // The first three bytes of the emoji print nothing; the fourth prints it.
  assert.deepEqual(parts, ["a", "", "", "", "😀", ""]);
});

Deno.test("bpe: decode strips the leading space only right after BOS", () => {
  const tok = new Tokenizer(tok512);
  const id = tok.id(" Once");
  assert.ok(id > 2);
  assert.equal(tok.decode(1, id), "Once");
  assert.equal(tok.decode(100, id), " Once");
  assert.equal(tok.decode(100, tok.id("<0x0A>")), "\n");
});

Deno.test("bpe: options — EOS, no BOS, empty text, bad ids", () => {
  const tok = new Tokenizer(tok512);
  assert.deepEqual(tok.encode("", { bos: true }), [1]);
  assert.deepEqual(tok.encode("", { bos: false }), []);
  const ids = tok.encode("Once", { bos: false, eos: true });
  assert.equal(ids.at(-1), 2);
  assert.notEqual(ids[0], 1);
  // tokenizer.bin has no token types: run.c prints EOS's piece as it is.
  assert.equal(tok.decode(5, 2), "\n</s>\n");
  assert.throws(() => tok.decode(1, 512), /outside the vocabulary/);
});

Deno.test("bpe: safe decoding drops control bytes as run.c's safe_printf does", () => {
  const tok = new Tokenizer(tok512);
  const bell = tok.id("<0x07>");
  const nl = tok.id("<0x0A>");
  assert.equal(tok.decodeAll([5, bell, nl], { safe: true }), "\n");
  assert.equal(tok.decodeAll([5, bell, nl]), "\u0007\n");
});

Deno.test("bpe: encoding a long text stays fast (heap merge)", () => {
  const tok = new Tokenizer(tok32k);
  const text = "Once upon a time, there was a little girl named Lily. ".repeat(
    400,
  );
  const t0 = performance.now();
  const ids = tok.encode(text, { bos: true });
  const ms = performance.now() - t0;
  assert.equal(tok.decodeAll(ids), text);
  // 22k characters; run.c's quadratic scan would take minutes here.
  assert.ok(ms < 2000, `${ms} ms`);
});
