import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/norm.ts";
import { assertNmse, randomF32 } from "../helpers.ts";

const rt = await Runtime.load();

interface NormCase {
  n: number;
  eps: number;
  /** x is uniform in [offset − spread, offset + spread). */
  offset: number;
  spread: number;
  seed: number;
}

const SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 17, 31, 64, 288, 769, 4096];

const NORM_CASES: NormCase[] = [
  ...SIZES.map((n, i) => ({
    n,
    eps: 1e-5,
    offset: 0,
    spread: 1,
    seed: 10 + i,
  })),
  { n: 100, eps: 1e-6, offset: 0, spread: 1e-3, seed: 1 }, // eps matters
  { n: 100, eps: 1e-5, offset: 0, spread: 300, seed: 2 },
  // A large mean next to a small spread: the two-pass variance still holds.
  { n: 515, eps: 1e-5, offset: 100, spread: 1, seed: 3 },
];

function input(c: NormCase): Float32Array {
  return randomF32(c.n, c.seed, c.offset - c.spread, c.offset + c.spread);
}

Deno.test("rmsnorm_f32 matches the twin, in place too", () => {
  for (const c of NORM_CASES) {
    const x = input(c);
    const w = randomF32(c.n, c.seed + 1000, 0.5, 1.5);
    const want = new Float32Array(c.n);
    ref.rmsnorm_f32(want, x, w, c.n, c.eps);
    const xa = rt.arrayFrom(Float32Array, x),
      wa = rt.arrayFrom(Float32Array, w);
    const out = rt.array(Float32Array, c.n);
    rt.k.rmsnorm_f32(out.ptr, xa.ptr, wa.ptr, c.n, c.eps);
    assertNmse(out.view, want, undefined, `rmsnorm ${JSON.stringify(c)}`);
    rt.k.rmsnorm_f32(xa.ptr, xa.ptr, wa.ptr, c.n, c.eps);
    assertNmse(xa.view, want, undefined, `rmsnorm in place ${c.n}`);
    for (const a of [xa, wa, out]) a.free();
  }
});

Deno.test("rmsnorm_f32 gives unit root-mean-square with unit weights", () => {
  const n = 333;
  const x = rt.arrayFrom(Float32Array, randomF32(n, 7, -40, 40));
  const w = rt.arrayFrom(Float32Array, new Float32Array(n).fill(1));
  rt.k.rmsnorm_f32(x.ptr, x.ptr, w.ptr, n, 0);
  const ms = x.view.reduce((s, v) => s + v * v, 0) / n;
  // n f32 roundings of relative size 2⁻²⁴ each, with margin.
  assert.ok(Math.abs(ms - 1) < n * 2 ** -22, `mean square ${ms}`);
  x.free();
  w.free();
});

Deno.test("layernorm_f32 matches the twin with and without weight and bias", () => {
  for (const c of NORM_CASES) {
    const x = input(c);
    const w = randomF32(c.n, c.seed + 1000, 0.5, 1.5);
    const b = randomF32(c.n, c.seed + 2000, -0.5, 0.5);
    const xa = rt.arrayFrom(Float32Array, x);
    const wa = rt.arrayFrom(Float32Array, w),
      ba = rt.arrayFrom(Float32Array, b);
    const out = rt.array(Float32Array, c.n);
    for (
      const [useW, useB] of [[false, false], [true, false], [false, true], [
        true,
        true,
      ]]
    ) {
      const want = new Float32Array(c.n);
      ref.layernorm_f32(want, x, useW ? w : null, useB ? b : null, c.n, c.eps);
      const wp = useW ? wa.ptr : 0, bp = useB ? ba.ptr : 0;
      rt.k.layernorm_f32(out.ptr, xa.ptr, wp, bp, c.n, c.eps);
      const what = `layernorm w=${useW} b=${useB} ${JSON.stringify(c)}`;
      assertNmse(out.view, want, undefined, what);
      // In place: x is overwritten, so restore it afterwards.
      rt.k.layernorm_f32(xa.ptr, xa.ptr, wp, bp, c.n, c.eps);
      assertNmse(xa.view, want, undefined, `${what} in place`);
      xa.view.set(x);
    }
    for (const a of [xa, wa, ba, out]) a.free();
  }
});

Deno.test("layernorm_f32 output has zero mean and unit variance", () => {
  const n = 1000;
  const x = rt.arrayFrom(Float32Array, randomF32(n, 8, 95, 105));
  rt.k.layernorm_f32(x.ptr, x.ptr, 0, 0, n, 0);
  const v = x.view;
  const mean = v.reduce((s, a) => s + a, 0) / n;
  const variance = v.reduce((s, a) => s + (a - mean) ** 2, 0) / n;
  // x ≈ 100 carries an absolute rounding error of 2⁻¹⁸ ≈ 4e-6 per element
  // against σ ≈ 2.9: errors of ~1e-6 in the result, far under these bounds.
  assert.ok(Math.abs(mean) < 1e-4, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 1e-4, `variance ${variance}`);
  x.free();
});
