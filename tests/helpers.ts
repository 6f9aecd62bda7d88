/**
 * Shared test helpers: seeded inputs (independent of the WASM PRNG under
 * test) and the normalised-MSE comparison every kernel test uses.
 */
import assert from "node:assert/strict";

/** Mulberry32: a tiny seeded generator for test inputs only. */
export function testRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n floats uniform in [lo, hi) from a seeded generator. */
export function randomF32(
  n: number,
  seed: number,
  lo = -1,
  hi = 1,
): Float32Array {
  const rand = testRng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/**
 * Normalised mean squared error, Σ(a−b)² / Σb², as llama.cpp's
 * test-backend-ops uses it; 0 for two empty or two all-zero arrays.
 */
export function nmse(actual: ArrayLike<number>, expected: ArrayLike<number>) {
  assert.equal(actual.length, expected.length, "length mismatch");
  let err = 0, ref = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = actual[i] - expected[i];
    err += d * d;
    ref += expected[i] * expected[i];
  }
  if (ref === 0) return err === 0 ? 0 : Infinity;
  return err / ref;
}

/** Default kernel tolerance: NMSE below 1e-7 (f32 sums in another order). */
export const NMSE_TOLERANCE = 1e-7;

export function assertNmse(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance = NMSE_TOLERANCE,
  what = "",
): void {
  const e = nmse(actual, expected);
  assert.ok(
    e <= tolerance,
    `${what} NMSE ${e.toExponential(3)} exceeds ${tolerance}`,
  );
}
