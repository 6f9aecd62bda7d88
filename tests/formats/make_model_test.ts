import assert from "node:assert/strict";
import {
  main,
  makeModel,
  SHAPES,
  WEIGHT_STD,
} from "../../scripts/make_model.ts";
import { llama2cFileBytes, readLlama2c } from "../../src/formats/llama2c.ts";
import type { LlamaConfig } from "../../src/formats/types.ts";
import { f32s } from "./fixtures.ts";

const small: LlamaConfig = {
  ...SHAPES["15M"],
  dim: 64,
  hiddenDim: 160,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 1000,
  seqLen: 64,
};

async function make(config: LlamaConfig, seed: number, chunk?: number) {
  const out = await Deno.makeTempFile({ suffix: ".bin" });
  try {
    await makeModel({ config, seed, out, chunk });
    return await Deno.readFile(out);
  } finally {
    await Deno.remove(out);
  }
}

Deno.test("make-model: shapes are PROVENANCE.md's story models", () => {
  const row = (
    c: LlamaConfig,
  ) => [
    c.dim,
    c.nLayers,
    c.nHeads,
    c.nKvHeads,
    c.hiddenDim,
    c.vocabSize,
    c.seqLen,
  ];
  assert.deepEqual(row(SHAPES["15M"]), [288, 6, 6, 6, 768, 32000, 256]);
  assert.deepEqual(row(SHAPES["42M"]), [512, 8, 8, 8, 1376, 32000, 1024]);
  assert.deepEqual(row(SHAPES["110M"]), [768, 12, 12, 12, 2048, 32000, 1024]);
});

Deno.test("make-model: a seeded checkpoint reads back with N(0, 0.02) weights and unit norms", async () => {
  // A chunk size that splits sections mid-way exercises the streaming.
  const bytes = await make(small, 7, 1000);
  assert.equal(bytes.length, llama2cFileBytes(small, true));
  const m = readLlama2c(bytes, "made.bin");
  assert.deepEqual(m.config, small);
  assert.equal(m.tensors.classifier, m.tensors.tokenEmbedding);
  for (
    const t of [
      m.tensors.finalNorm,
      ...m.tensors.layers.flatMap((l) => [l.attnNorm, l.ffnNorm]),
    ]
  ) {
    assert.ok(f32s(t).every((x) => x === 1));
  }
  // All weight matrices together: n ≈ 190k draws.
  const w = [
    m.tensors.tokenEmbedding,
    ...m.tensors.layers.flatMap((
      l,
    ) => [l.wq, l.wk, l.wv, l.wo, l.w1, l.w2, l.w3]),
  ]
    .map(f32s);
  let n = 0, sum = 0, sq = 0, inside = 0;
  for (const v of w) {
    for (const x of v) {
      n++;
      sum += x;
      sq += x * x;
      if (Math.abs(x) <= WEIGHT_STD) inside++;
    }
  }
  const mean = sum / n;
  const std = Math.sqrt(sq / n - mean * mean);
  // 5-sigma bounds: the mean's standard error is σ/√n, the sample std's
  // relative standard error is 1/√(2n), a proportion's is √(p(1−p)/n).
  assert.ok(Math.abs(mean) < (5 * WEIGHT_STD) / Math.sqrt(n), `mean ${mean}`);
  assert.ok(
    Math.abs(std / WEIGHT_STD - 1) < 5 / Math.sqrt(2 * n),
    `std ${std}`,
  );
  const p = 0.6826894921370859; // P(|Z| ≤ 1)
  assert.ok(
    Math.abs(inside / n - p) < 5 * Math.sqrt((p * (1 - p)) / n),
    `${inside / n} within 1σ`,
  );
});

Deno.test("make-model: the seed decides the weights; chunking does not", async () => {
  const a = await make(small, 7);
  const b = await make(small, 7, 778);
  const c = await make(small, 8);
  // (Byte loops: assert's diff of two large arrays would take minutes.)
  const same = (x: Uint8Array, y: Uint8Array) =>
    x.length === y.length && x.every((v, i) => v === y[i]);
  assert.ok(same(a, b), "chunk size changed the weights");
  assert.ok(!same(a, c), "seeds 7 and 8 gave the same weights");
});

Deno.test("make-model: bad arguments are refused with exit status 2", async () => {
  const quiet = console.error;
  console.error = () => {};
  try {
    assert.equal(await main(["--shape", "7B", "--out", "/dev/null"]), 2);
    assert.equal(await main(["--shape", "15M"]), 2); // no --out
    assert.equal(
      await main(["--shape", "15M", "--seed", "-1", "--out", "x"]),
      2,
    );
    assert.equal(await main(["--size", "15M"]), 2);
  } finally {
    console.error = quiet;
  }
  await assert.rejects(
    () => makeModel({ config: small, seed: -1, out: "/dev/null" }),
    /--seed/,
  );
});
