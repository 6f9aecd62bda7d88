import assert from "node:assert/strict";
import { convert, main } from "../../scripts/convert.ts";
import { parseGguf, readGguf } from "../../src/formats/gguf.ts";
import { readLlama2c } from "../../src/formats/llama2c.ts";
import { checkGoldenEncoding } from "../tokenizer/golden.ts";
import { assertSame, model, namedTensors } from "./fixtures.ts";
import { quantize_q8_0 } from "../../src/kernels/ref/q8.ts";

const STORIES = model("stories260K.bin");
const TOK512 = model("tok512.bin");
const ref = readLlama2c(Deno.readFileSync(STORIES), STORIES);
const llamaCpp = readGguf(
  Deno.readFileSync(model("stories260K-f32.gguf")),
  "llama.cpp f32",
);

async function converted(type: "f32" | "q8_0") {
  const out = await Deno.makeTempFile({ suffix: ".gguf" });
  try {
    const report = await convert({
      input: STORIES,
      tokenizer: TOK512,
      out,
      type,
    });
    const bytes = await Deno.readFile(out);
    assert.equal(report.bytes, bytes.length);
    return { bytes, report, model: readGguf(bytes, out) };
  } finally {
    await Deno.remove(out);
  }
}

Deno.test("convert: llama2.c → GGUF f32 reads back bit-identical", async () => {
  const { bytes, report, model: m } = await converted("f32");
  assert.deepEqual(report.types, { f32: 2 + 9 * 5 }); // shared classifier: no output.weight
  assert.deepEqual(m.config, { ...ref.config, normEps: Math.fround(1e-5) });
  assert.equal(m.tensors.classifier, m.tensors.tokenEmbedding);
  namedTensors(m).forEach(([name, t], i) => {
    const [, r] = namedTensors(ref)[i];
    assert.deepEqual([t.type, t.rows, t.cols], ["f32", r.rows, r.cols], name);
    assertSame(t.data, r.data, name);
  });
  // The vocabulary is the one llama.cpp's own converter wrote for this model.
  const v = m.vocabulary!;
  assert.deepEqual(v.tokens, llamaCpp.vocabulary!.tokens);
  assert.deepEqual(v.scores, llamaCpp.vocabulary!.scores);
  assert.deepEqual(v.types, llamaCpp.vocabulary!.types);
  checkGoldenEncoding(v);
  // And the keys llama.cpp reads for a llama model, with the values it wrote
  // (except the context length, where we keep the model's own 512).
  const ours = parseGguf(bytes, "ours").metadata;
  const theirs =
    parseGguf(Deno.readFileSync(model("stories260K-f32.gguf")), "theirs")
      .metadata;
  for (
    const key of [
      "general.architecture",
      "llama.embedding_length",
      "llama.feed_forward_length",
      "llama.block_count",
      "llama.attention.head_count",
      "llama.attention.head_count_kv",
      "llama.rope.dimension_count",
      "llama.attention.layer_norm_rms_epsilon",
      "tokenizer.ggml.model",
      "tokenizer.ggml.bos_token_id",
      "tokenizer.ggml.eos_token_id",
      "tokenizer.ggml.unknown_token_id",
    ]
  ) {
    assert.deepEqual(ours.get(key), theirs.get(key), key);
  }
  assert.equal(ours.get("llama.context_length")?.value, 512);
});

Deno.test("convert: → q8_0 quantizes with quantize_q8_0, byte-identical to llama.cpp's", async () => {
  const { report, model: m } = await converted("q8_0");
  // Embedding + 6 matrices per layer are q8_0; norms and ffn_down (rows of
  // 172 values, not a multiple of 32) stay f32.
  assert.deepEqual(report.types, { q8_0: 1 + 6 * 5, f32: 11 + 5 });
  const theirs = readGguf(
    Deno.readFileSync(model("stories260K-q8_0.gguf")),
    "llama.cpp q8_0",
  );
  const theirTensors = namedTensors(theirs);
  namedTensors(m).forEach(([name, t], i) => {
    const [, r] = namedTensors(ref)[i];
    if (name.endsWith(".w2") || r.rows === 1) {
      assert.equal(t.type, "f32", name);
      return assertSame(t.data, r.data, name);
    }
    assert.equal(t.type, "q8_0", name);
    // The plain-TS twin of the kernel, on the original weights.
    const n = r.rows * r.cols;
    const want = new Uint8Array((n / 32) * 34);
    quantize_q8_0(want, new Float32Array(r.data.slice().buffer), n);
    assertSame(t.data, want, name);
    // llama-quantize made the same bytes from the same weights.
    const [, their] = theirTensors[i];
    assert.equal(their.type, "q8_0", name);
    assertSame(t.data, their.data, `${name} vs llama.cpp`);
  });
});

Deno.test("convert: bad arguments and inputs are refused with a message", async () => {
  const errors: string[] = [];
  const quiet = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assert.equal(await main(["--in", STORIES]), 2); // no --out
    assert.equal(
      await main(["--in", STORIES, "--out", "/dev/null", "--type", "q4_0"]),
      2,
    );
    assert.equal(await main(["--in", STORIES, "--out", "/dev/null"]), 2); // no tokenizer
    assert.equal(
      await main(["--in", "/nonexistent.bin", "--out", "/dev/null"]),
      1,
    );
    assert.equal(await main(["--input", STORIES]), 2);
  } finally {
    console.error = quiet;
  }
  assert.match(errors[1], /--type must be f32 or q8_0, not "q4_0"/);
  assert.match(errors[2], /pass a tokenizer.bin/);
  assert.match(
    errors[3],
    /\/nonexistent.bin: cannot read the model: no such file/,
  );
});
