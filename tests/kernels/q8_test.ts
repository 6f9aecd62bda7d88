import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/q8.ts";
import { matmul_f32 } from "../../src/kernels/ref/matmul.ts";
import { assertNmse, nmse, randomF32, testRng } from "../helpers.ts";

const rt = await Runtime.load();

function wasmQuantize(x: Float32Array): Uint8Array {
  const xa = rt.arrayFrom(Float32Array, x);
  const bytes = ref.q8RowBytes(x.length);
  const out = rt.arrayFrom(Uint8Array, new Uint8Array(bytes + 3).fill(0xa5));
  rt.k.quantize_q8_0(out.ptr, xa.ptr, x.length);
  const q = out.view.slice();
  assert.deepEqual(
    [...q.subarray(bytes)],
    [0xa5, 0xa5, 0xa5],
    "wrote past the last block",
  );
  assert.deepEqual(xa.view, x, "x must not change");
  xa.free();
  out.free();
  return q.subarray(0, bytes);
}

function refQuantize(x: Float32Array): Uint8Array {
  const q = new Uint8Array(ref.q8RowBytes(x.length));
  ref.quantize_q8_0(q, x, x.length);
  return q;
}

/** Blocks whose values scale differently: tiny, subnormal, huge, mixed, zero. */
function quantizeInputs(): Float32Array[] {
  const rand = testRng(8);
  const blocks: Float32Array[] = [];
  for (const scale of [1, 1e-3, 1e-30, 1e-39, 1e-44, 1e4, 1e30, 3e38]) {
    blocks.push(randomF32(32, blocks.length, -scale, scale));
  }
  blocks.push(new Float32Array(32)); // all zero: d = 0, id = 0
  blocks.push(new Float32Array(32).fill(-0.75)); // every value is −amax
  // Exact halves: amax 127 makes d = 1, so x · id = x and roundf's ties show.
  blocks.push(
    Float32Array.from(
      { length: 32 },
      (_, i) => (i === 0 ? 127 : ((i % 9) - 4) + 0.5),
    ),
  );
  // A NaN is skipped by amax and quantizes to 0; ±inf make d inf and id 0.
  const nan = randomF32(32, 77);
  nan[5] = NaN;
  blocks.push(nan);
  const inf = randomF32(32, 78);
  inf[9] = -Infinity;
  blocks.push(inf);
  // Blocks with one large outlier, as real activations have.
  const outlier = randomF32(32, 79);
  outlier[Math.floor(rand() * 32)] = 300;
  blocks.push(outlier);
  const all = new Float32Array(blocks.length * 32);
  blocks.forEach((b, i) => all.set(b, i * 32));
  return [all, randomF32(32 * 97, 5, -2, 2), new Float32Array(0)];
}

Deno.test("quantize_q8_0 matches ggml's reference bit for bit", () => {
  for (const x of quantizeInputs()) {
    assert.deepEqual(wasmQuantize(x), refQuantize(x), `n = ${x.length}`);
  }
});

Deno.test("quantize_q8_0: ties round away from zero, d is f16(amax / 127)", () => {
  const x = new Float32Array(32);
  x.set([127, 2.5, -2.5, 0.5, -0.5, 1.5, -1.49, 126.5]);
  const q = wasmQuantize(x);
  assert.equal(new DataView(q.buffer).getUint16(0, true), 0x3c00); // d = 1.0
  assert.deepEqual([...new Int8Array(q.buffer, 2, 8)], [
    127,
    3,
    -3,
    1,
    -1,
    2,
    -1,
    127,
  ]);
});

Deno.test("dequantize_q8_0 is d · q exactly, and within the rounding bound of x", () => {
  const x = randomF32(32 * 41, 12, -3, 3);
  const q = wasmQuantize(x);
  const qa = rt.arrayFrom(Uint8Array, q);
  const out = rt.array(Float32Array, x.length + 1);
  out.view[x.length] = 7;
  rt.k.dequantize_q8_0(out.ptr, qa.ptr, x.length);
  const got = out.view.slice(0, x.length);
  assert.equal(out.view[x.length], 7, "wrote past n");
  const want = new Float32Array(x.length);
  ref.dequantize_q8_0(want, q, x.length);
  assert.deepEqual(got, want);
  // |d·q − x| ≤ d/2 from rounding q, plus |q| · |f16(d) − d| ≤ 127 · d · 2^-11
  // from storing d as f16 (and f32 rounding, far below both).
  for (let b = 0; b < x.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = amax / 127;
    const bound = d * (0.5 + 127 * 2 ** -11) * (1 + 1e-6);
    for (let j = 0; j < 32; j++) {
      const i = b * 32 + j;
      assert.ok(
        Math.abs(got[i] - x[i]) <= bound,
        `x[${i}] = ${x[i]} came back as ${got[i]}`,
      );
    }
  }
  qa.free();
  out.free();
});

interface Q8Case {
  rows: number;
  /** A multiple of 32. */
  cols: number;
  m: number;
  ldy: number;
  seed: number;
}

/** Block counts 0, 1, odd and even; rows around multiples of 4 (quads); batches 1..16. */
const CASES: Q8Case[] = [
  ...[0, 1, 2, 3, 5, 24].map((b, i) => ({
    rows: 5,
    cols: 32 * b,
    m: 1,
    ldy: 5,
    seed: 10 + i,
  })),
  ...Array.from({ length: 16 }, (_, i) => ({
    rows: 6,
    cols: 96,
    m: i + 1,
    ldy: 8,
    seed: 30 + i,
  })),
  ...[2, 3, 4, 7, 8, 13].map((rows, i) => ({
    rows,
    cols: 64,
    m: 3,
    ldy: rows + 1,
    seed: 60 + i,
  })),
  { rows: 0, cols: 64, m: 1, ldy: 0, seed: 1 },
  { rows: 0, cols: 64, m: 5, ldy: 0, seed: 2 },
  { rows: 1, cols: 32, m: 1, ldy: 1, seed: 3 },
  { rows: 1, cols: 32, m: 16, ldy: 1, seed: 4 },
  { rows: 37, cols: 288, m: 8, ldy: 40, seed: 5 },
  { rows: 9, cols: 2048, m: 4, ldy: 9, seed: 6 },
];

/** Runs matmul_q8_0 (or matvec_q8_0); returns the outputs, checking that nothing else in y changed. */
function runWasm(
  c: Q8Case,
  wq: Uint8Array,
  xq: Uint8Array,
  matvec: boolean,
): Float32Array {
  const wa = rt.arrayFrom(Uint8Array, wq);
  const xa = rt.arrayFrom(Uint8Array, xq);
  const sentinel = -9876.5;
  const len = Math.max(1, (c.m - 1) * c.ldy + c.rows + 3);
  const ya = rt.arrayFrom(Float32Array, new Float32Array(len).fill(sentinel));
  if (matvec) rt.k.matvec_q8_0(ya.ptr, wa.ptr, xa.ptr, c.rows, c.cols);
  else rt.k.matmul_q8_0(ya.ptr, wa.ptr, xa.ptr, c.rows, c.cols, c.m, c.ldy);
  const y = ya.view.slice();
  wa.free();
  xa.free();
  ya.free();
  const out = new Float32Array(c.m * c.rows);
  const written = new Set<number>();
  for (let j = 0; j < c.m; j++) {
    for (let r = 0; r < c.rows; r++) {
      out[j * c.rows + r] = y[j * c.ldy + r];
      written.add(j * c.ldy + r);
    }
  }
  for (let i = 0; i < len; i++) {
    if (!written.has(i)) {
      assert.equal(y[i], sentinel, `y[${i}] was overwritten`);
    }
  }
  return out;
}

function inputs(c: Q8Case) {
  const w = randomF32(c.rows * c.cols, c.seed);
  const x = randomF32(c.m * c.cols, c.seed + 1000);
  return { w, x, wq: refQuantize(w), xq: refQuantize(x) };
}

// Integer block sums are exact on both sides; only the f32 sum over blocks
// differs in order, so the default NMSE bound holds with room to spare.
Deno.test("matvec_q8_0 equals the twin on the same quantized bytes", () => {
  for (const c of CASES.filter((c) => c.m === 1)) {
    const { wq, xq } = inputs(c);
    const want = new Float32Array(c.rows);
    ref.matvec_q8_0(want, wq, xq, c.rows, c.cols);
    assertNmse(
      runWasm(c, wq, xq, true),
      want,
      undefined,
      `matvec ${JSON.stringify(c)}`,
    );
  }
});

Deno.test("matmul_q8_0 equals the twin for m = 1..16 and any ldy", () => {
  for (const c of CASES) {
    const { wq, xq } = inputs(c);
    const want = new Float32Array(c.m * c.rows);
    ref.matmul_q8_0(want, wq, xq, c.rows, c.cols, c.m, c.rows);
    assertNmse(
      runWasm(c, wq, xq, false),
      want,
      undefined,
      `matmul ${JSON.stringify(c)}`,
    );
  }
});

Deno.test("matmul_q8_0: a row's result does not depend on what shares the call", () => {
  // Quads of rows and single rows must sum the same way, so that splitting
  // rows or vectors between calls (or threads) changes no bit.
  const rows = 21, cols = 160, m = 3;
  const full = { rows, cols, m, ldy: rows, seed: 0 };
  const { wq, xq } = inputs({ ...full, seed: 71 });
  const whole = runWasm(full, wq, xq, false);
  const rb = ref.q8RowBytes(cols);
  for (const [a, b] of [[0, 1], [2, 3], [0, 8], [5, 21], [9, 17], [20, 21]]) {
    for (const [j0, j1] of [[0, 3], [1, 2], [2, 3]]) {
      const c = { rows: b - a, cols, m: j1 - j0, ldy: b - a, seed: 0 };
      const got = runWasm(
        c,
        wq.subarray(a * rb, b * rb),
        xq.subarray(j0 * rb, j1 * rb),
        c.m === 1,
      );
      for (let j = j0; j < j1; j++) {
        for (let r = a; r < b; r++) {
          assert.ok(
            Object.is(got[(j - j0) * c.rows + (r - a)], whole[j * rows + r]),
            `row ${r}, vector ${j}, computed with rows ${a}..${b}, vectors ${j0}..${j1}`,
          );
        }
      }
    }
  }
});

Deno.test("matmul_q8_0 is as close to the f32 product as 8-bit rounding allows", () => {
  // Inputs uniform in [-1, 1): within a block d ≤ 1/127 and each rounding
  // error is uniform on ±d/2, variance d²/12 against the inputs' 1/3: a
  // relative variance of at most (1/127)² / 4 = 1.55e-5 per operand. Both W
  // and x are rounded, so E[NMSE] ≤ 3.1e-5; f16 storage of d adds ≤ 2^-22.
  // Allow twice the expectation for the spread of a 64 × 8 sample.
  const c = { rows: 64, cols: 768, m: 8, ldy: 64, seed: 21 };
  const { w, x, wq, xq } = inputs(c);
  const exact = new Float32Array(c.m * c.rows);
  matmul_f32(exact, w, x, c.rows, c.cols, c.m, c.rows);
  const e = nmse(runWasm(c, wq, xq, false), exact);
  assert.ok(e < 2 * 3.1e-5, `NMSE ${e} against the f32 product`);
  assert.ok(e > 0, "the products must differ from f32 somewhere");
});

Deno.test("quantize then matvec_q8_0 on a kernel-quantized x agrees with the twin", () => {
  const c = { rows: 11, cols: 320, m: 1, ldy: 11, seed: 31 };
  const w = randomF32(c.rows * c.cols, c.seed);
  const x = randomF32(c.cols, c.seed + 1);
  const wq = wasmQuantize(w), xq = wasmQuantize(x);
  const want = new Float32Array(c.rows);
  ref.matvec_q8_0(want, refQuantize(w), refQuantize(x), c.rows, c.cols);
  assertNmse(runWasm(c, wq, xq, true), want);
});
