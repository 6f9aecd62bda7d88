import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/matmul.ts";
import { assertNmse, randomF32 } from "../helpers.ts";

const rt = await Runtime.load();

interface MatmulCase {
  rows: number;
  cols: number;
  /** Vectors in the batch (1..16); matvec_f32 runs the m = 1 cases. */
  m: number;
  /** Output row stride in floats (≥ rows); the gap must stay untouched. */
  ldy: number;
  seed: number;
}

/**
 * Column counts around every tail the kernels have (8, 4 and single
 * floats); row counts below, at and above multiples of 4 (rows go in quads,
 * the rest one at a time), 0 and 1; every batch size 1..16 (pairs of
 * vectors and a single one).
 */
const COLS = [0, 1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 100, 768];
const CASES: MatmulCase[] = [
  ...COLS.map((cols, i) => ({ rows: 5, cols, m: 1, ldy: 5, seed: 10 + i })),
  ...COLS.map((cols, i) => ({ rows: 3, cols, m: 15, ldy: 4, seed: 40 + i })),
  ...COLS.map((cols, i) => ({ rows: 10, cols, m: 3, ldy: 11, seed: 90 + i })),
  ...Array.from({ length: 16 }, (_, i) => ({
    rows: 7,
    cols: 37,
    m: i + 1,
    ldy: 9,
    seed: 70 + i,
  })),
  ...[2, 4, 6, 8, 9].map((rows, i) => ({
    rows,
    cols: 24,
    m: 2,
    ldy: rows,
    seed: 120 + i,
  })),
  { rows: 0, cols: 16, m: 1, ldy: 0, seed: 1 },
  { rows: 0, cols: 16, m: 4, ldy: 0, seed: 2 },
  { rows: 1, cols: 1, m: 1, ldy: 1, seed: 3 },
  { rows: 1, cols: 1, m: 16, ldy: 1, seed: 4 },
  { rows: 1, cols: 768, m: 16, ldy: 1, seed: 5 },
  { rows: 64, cols: 288, m: 8, ldy: 64, seed: 6 },
  { rows: 33, cols: 2048, m: 4, ldy: 40, seed: 7 },
];

/** Output buffer length: m rows of ldy, plus a tail that must stay untouched. */
function outLength(c: MatmulCase): number {
  return Math.max(1, (c.m - 1) * c.ldy + c.rows + 5);
}

/** Runs matmul_f32 (or matvec_f32 when `matvec`), keeping every other float of y as it was. */
function runWasm(
  c: MatmulCase,
  w: Float32Array,
  x: Float32Array,
  matvec: boolean,
) {
  const wa = rt.arrayFrom(Float32Array, w);
  const xa = rt.arrayFrom(Float32Array, x);
  const sentinel = -12345.5;
  const ya = rt.arrayFrom(
    Float32Array,
    new Float32Array(outLength(c)).fill(sentinel),
  );
  if (matvec) rt.k.matvec_f32(ya.ptr, wa.ptr, xa.ptr, c.rows, c.cols);
  else rt.k.matmul_f32(ya.ptr, wa.ptr, xa.ptr, c.rows, c.cols, c.m, c.ldy);
  const y = ya.view.slice();
  assert.deepEqual(wa.view, w, "W must not change");
  assert.deepEqual(xa.view, x, "x must not change");
  wa.free();
  xa.free();
  ya.free();
  return { y, sentinel };
}

/** The written outputs, vector after vector, and a check that nothing else was. */
function outputs(c: MatmulCase, y: Float32Array, sentinel: number) {
  const out = new Float32Array(c.m * c.rows);
  const written = new Set<number>();
  for (let j = 0; j < c.m; j++) {
    for (let r = 0; r < c.rows; r++) {
      out[j * c.rows + r] = y[j * c.ldy + r];
      written.add(j * c.ldy + r);
    }
  }
  for (let i = 0; i < y.length; i++) {
    if (!written.has(i)) {
      assert.equal(y[i], sentinel, `y[${i}] was overwritten`);
    }
  }
  return out;
}

function expected(c: MatmulCase, w: Float32Array, x: Float32Array) {
  const y = new Float32Array(c.m * c.rows);
  ref.matmul_f32(y, w, x, c.rows, c.cols, c.m, c.rows);
  return y;
}

Deno.test("matvec_f32 matches the twin", () => {
  for (const c of CASES.filter((c) => c.m === 1)) {
    const w = randomF32(c.rows * c.cols, c.seed);
    const x = randomF32(c.cols, c.seed + 1000);
    const { y, sentinel } = runWasm(c, w, x, true);
    const want = new Float32Array(c.rows);
    ref.matvec_f32(want, w, x, c.rows, c.cols);
    assertNmse(
      outputs(c, y, sentinel),
      want,
      undefined,
      `matvec ${JSON.stringify(c)}`,
    );
  }
});

Deno.test("matmul_f32 matches the twin for m = 1..16 and any ldy", () => {
  for (const c of CASES) {
    const w = randomF32(c.rows * c.cols, c.seed);
    const x = randomF32(c.m * c.cols, c.seed + 1000);
    const { y, sentinel } = runWasm(c, w, x, false);
    assertNmse(
      outputs(c, y, sentinel),
      expected(c, w, x),
      undefined,
      `matmul ${JSON.stringify(c)}`,
    );
  }
});

Deno.test("matmul_f32: a row's result does not depend on what shares the call", () => {
  // Rows are computed in quads from the four quarters of W, the rest one at
  // a time; every path must sum in the same order, so that splitting rows
  // or vectors between calls (or threads) changes no bit.
  const rows = 23, cols = 45, m = 5;
  const w = randomF32(rows * cols, 61);
  const x = randomF32(m * cols, 62);
  const whole = outputs(
    { rows, cols, m, ldy: rows, seed: 0 },
    runWasm({ rows, cols, m, ldy: rows, seed: 0 }, w, x, false).y,
    -12345.5,
  );
  for (const [a, b] of [[0, 1], [3, 4], [0, 9], [5, 23], [11, 19], [22, 23]]) {
    for (const [j0, j1] of [[0, 5], [2, 3], [1, 4]]) {
      const c = { rows: b - a, cols, m: j1 - j0, ldy: b - a, seed: 0 };
      const part = runWasm(
        c,
        w.subarray(a * cols, b * cols),
        x.subarray(j0 * cols, j1 * cols),
        c.m === 1,
      );
      const got = outputs(c, part.y, part.sentinel);
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

Deno.test("matmul_f32: inf and NaN propagate as IEEE arithmetic says", () => {
  const c = { rows: 3, cols: 20, m: 2, ldy: 3, seed: 5 };
  const w = randomF32(c.rows * c.cols, c.seed);
  const x = randomF32(c.m * c.cols, c.seed + 1);
  w[1 * c.cols + 17] = Infinity; // row 1 hits +inf · x (finite, nonzero)
  x[1 * c.cols + 3] = NaN; // vector 1 is NaN everywhere
  const { y, sentinel } = runWasm(c, w, x, false);
  const got = outputs(c, y, sentinel);
  assert.ok(Number.isFinite(got[0]) && Number.isFinite(got[2]));
  assert.equal(Math.abs(got[1]), Infinity);
  for (let r = 0; r < c.rows; r++) assert.ok(Number.isNaN(got[c.rows + r]));
});
