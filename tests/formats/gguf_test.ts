import assert from "node:assert/strict";
import {
  ggufVocabulary,
  llamaGgufSpec,
  parseGguf,
  readGguf,
  writeGguf,
} from "../../src/formats/gguf.ts";
import { readLlama2c } from "../../src/formats/llama2c.ts";
import {
  readTokenizerBin,
  toSentencepieceVocabulary,
} from "../../src/tokenizer/tokenizer_bin.ts";
import { Tokenizer } from "../../src/tokenizer/bpe.ts";
import {
  assertSame,
  f16ToNumber,
  model,
  namedTensors,
  tinyModel,
  tinyVocabulary,
  toFloats,
} from "./fixtures.ts";
import {
  checkGoldenDecoding,
  checkGoldenEncoding,
} from "../tokenizer/golden.ts";

const path = (t: string) => model(`stories260K-${t}.gguf`);
const ref = readLlama2c(
  Deno.readFileSync(model("stories260K.bin")),
  "stories260K.bin",
);
const refTensors = namedTensors(ref);
const tok512 = readTokenizerBin(
  Deno.readFileSync(model("tok512.bin")),
  "tok512",
);
const read = (t: string) => readGguf(Deno.readFileSync(path(t)), path(t));

Deno.test("gguf: the f32 file's config is the llama2.c model's, context 128 as written", () => {
  const m = read("f32");
  assert.equal(m.format, "gguf");
  // GGUF stores epsilon as f32; the kernels take it as f32 anyway.
  const eps = Math.fround(ref.config.normEps);
  assert.deepEqual(m.config, { ...ref.config, seqLen: 128, normEps: eps });
  // llama.cpp's converter hard-codes 128; the user can say what is right.
  const long = readGguf(Deno.readFileSync(path("f32")), "x", {
    contextLength: 512,
  });
  assert.equal(long.config.seqLen, 512);
  // A file without the key needs the override, and says so.
  const spec = llamaGgufSpec(
    tinyModel(),
    toSentencepieceVocabulary(tinyVocabulary(300)),
    { name: "t" },
  );
  spec.metadata = spec.metadata.filter((e) => e.key !== "llama.context_length");
  const bytes = writeGguf(spec);
  assert.throws(() => readGguf(bytes, "t"), /llama.context_length is missing/);
  assert.equal(readGguf(bytes, "t", { contextLength: 64 }).config.seqLen, 64);
});

Deno.test("gguf: every f32 tensor is bit-identical to the llama2.c weights", () => {
  const m = read("f32");
  // The file has a separate output.weight (a copy of the embedding).
  assert.notEqual(m.tensors.classifier, m.tensors.tokenEmbedding);
  namedTensors(m).forEach(([name, t], i) => {
    const [, r] = refTensors[i];
    assert.equal(t.type, "f32", name);
    assert.equal(t.rows, r.rows, name);
    assert.equal(t.cols, r.cols, name);
    assertSame(t.data, r.data, name);
  });
});

/** |f16(x) − x| ≤ half the f16 spacing at x: round-to-nearest, nothing worse. */
function assertF16Rounding(h: Float32Array, x: Float32Array, name: string) {
  for (let i = 0; i < x.length; i++) {
    const a = Math.abs(x[i]);
    // Spacing of f16 values around a: 2^(e−10) for normals, 2^−24 below 2^−14.
    const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
    const half = 2 ** (e - 10) / 2;
    assert.ok(
      Math.abs(h[i] - x[i]) <= half,
      `${name}[${i}]: f16 ${h[i]} vs f32 ${x[i]}`,
    );
  }
}

Deno.test("gguf: the f16 file is the f32 weights rounded to f16", () => {
  const m = read("f16");
  let f16 = 0;
  namedTensors(m).forEach(([name, t], i) => {
    const x = toFloats(refTensors[i][1]);
    if (t.type === "f32") assertSame(toFloats(t), x, name);
    else {
      assert.equal(t.type, "f16", name);
      f16++;
      assertF16Rounding(toFloats(t), x, name);
    }
  });
  assert.equal(f16, 37); // as PROVENANCE.md says: 37 F16 + 11 F32
});

Deno.test("gguf: the q8_0 file has llama.cpp's mixed types and dequantizes close", () => {
  const file = parseGguf(Deno.readFileSync(path("q8_0")), "q8");
  const counts: Record<string, number> = {};
  for (const t of file.tensors.values()) {
    counts[t.typeName] = (counts[t.typeName] ?? 0) + 1;
    if (t.name.includes("ffn_down")) assert.equal(t.typeName, "F16");
  }
  assert.deepEqual(counts, { Q8_0: 32, F16: 5, F32: 11 });
  const m = read("q8_0");
  namedTensors(m).forEach(([name, t], i) => {
    const x = toFloats(refTensors[i][1]);
    const y = toFloats(t);
    if (t.type === "f32") return assertSame(y, x, name);
    if (t.type === "f16") return assertF16Rounding(y, x, name);
    // q8_0: d = amax/127 stored as f16 (relative error ≤ 2^−11), q = round(x/d):
    // |x − q·d16| ≤ d/2 + 127·|d − d16| ≤ d16·(0.5 + 127·2^−11)·(1 + 2^−11).
    const dv = new DataView(t.data.buffer, t.data.byteOffset);
    for (let b = 0; b < x.length / 32; b++) {
      const d16 = f16ToNumber(dv.getUint16(34 * b, true));
      let amax = 0;
      for (let k = 0; k < 32; k++) {
        amax = Math.max(amax, Math.abs(x[32 * b + k]));
      }
      assert.ok(
        Math.abs(d16 - amax / 127) <= (amax / 127) * 2 ** -11,
        `${name} scale`,
      );
      const bound = d16 * (0.5 + 127 * 2 ** -11) * (1 + 2 ** -11);
      for (let k = 0; k < 32; k++) {
        const j = 32 * b + k;
        assert.ok(Math.abs(y[j] - x[j]) <= bound, `${name}[${j}]`);
      }
    }
  });
});

Deno.test("gguf: the vocabulary is tok512's in sentencepiece spelling", () => {
  const v = read("f32").vocabulary!;
  const ours = toSentencepieceVocabulary(tok512);
  assert.deepEqual(v.tokens, ours.tokens);
  assert.deepEqual(v.scores, ours.scores);
  assert.deepEqual(v.types, ours.types);
  assert.equal(v.bosId, 1);
  assert.equal(v.eosId, 2);
  assert.equal(v.spaceMarker, "▁");
  // " " ↔ "▁" is the only difference in the normal pieces.
  for (let i = 259; i < 512; i++) {
    assert.equal(v.tokens[i], tok512.tokens[i].replaceAll(" ", "▁"));
  }
});

Deno.test("gguf: the GGUF vocabulary encodes and decodes the golden runs", () => {
  const v = read("f32").vocabulary!;
  checkGoldenEncoding(v);
  checkGoldenDecoding(v);
  const tok = new Tokenizer(v);
  assert.equal(tok.decode(1, tok.id("▁Once")), "Once");
  assert.equal(tok.decode(5, tok.id("▁Once")), " Once");
  // Control tokens have no text and text never merges into them.
  assert.equal(tok.decode(5, 2), "");
  assert.ok(!tok.encode("<s> </s>", { bos: false }).some((i) => i <= 2));
});

Deno.test("gguf: writer → reader round trip keeps every value and type", () => {
  const m = tinyModel({}, false);
  const vocab = toSentencepieceVocabulary(tinyVocabulary(300));
  vocab.addBos = true;
  vocab.addSpacePrefix = false;
  const spec = llamaGgufSpec(m, vocab, { name: "tiny" });
  spec.metadata.push(
    { key: "test.u8", type: "u8", value: 200 },
    { key: "test.i8", type: "i8", value: -100 },
    { key: "test.u16", type: "u16", value: 60000 },
    { key: "test.i16", type: "i16", value: -30000 },
    { key: "test.i32", type: "i32", value: -(2 ** 31) },
    { key: "test.f64", type: "f64", value: Math.PI },
    { key: "test.u64", type: "u64", value: 2n ** 64n - 1n },
    { key: "test.i64", type: "i64", value: -(2 ** 40) },
    { key: "test.bool", type: "bool", value: false },
    {
      key: "test.strs",
      type: "array",
      itemType: "string",
      value: ["a", "", "▁ü"],
    },
    { key: "test.u64s", type: "array", itemType: "u64", value: [1, 2n ** 60n] },
  );
  const bytes = writeGguf(spec);
  const file = parseGguf(bytes, "tiny.gguf");
  for (const e of spec.metadata) {
    const want = e.type === "f32" ? Math.fround(e.value as number) : e.value;
    assert.deepEqual(file.metadata.get(e.key)?.value, want, e.key);
    assert.equal(file.metadata.get(e.key)?.type, e.type, e.key);
  }
  assert.equal(file.dataOffset % 32, 0);
  const back = readGguf(bytes, "tiny.gguf");
  assert.deepEqual(back.config, {
    ...m.config,
    normEps: Math.fround(m.config.normEps),
  });
  namedTensors(back).forEach(([name, t], i) => {
    const [, r] = namedTensors(m)[i];
    assert.deepEqual([t.type, t.rows, t.cols], [r.type, r.rows, r.cols], name);
    assertSame(t.data, r.data, name);
  });
  assert.deepEqual(back.vocabulary, vocab);
  assert.deepEqual(ggufVocabulary(file, "tiny.gguf"), vocab);
});

Deno.test("gguf: a shared classifier is written once and read back shared", () => {
  const m = tinyModel({}, true);
  const vocab = toSentencepieceVocabulary(tinyVocabulary(300));
  const file = parseGguf(
    writeGguf(llamaGgufSpec(m, vocab, { name: "t" })),
    "t",
  );
  assert.ok(!file.tensors.has("output.weight"));
  assert.equal(file.tensors.size, 2 + 9 * 2);
  const back = readGguf(writeGguf(llamaGgufSpec(m, vocab, { name: "t" })), "t");
  assert.equal(back.tensors.classifier, back.tensors.tokenEmbedding);
});
