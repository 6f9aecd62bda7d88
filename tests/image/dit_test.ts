import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import type { DiTConfig } from "../../src/image/config.ts";
import { DiT } from "../../src/image/dit.ts";
import { Rng } from "../../src/image/rng.ts";
import { randomF32 } from "../helpers.ts";

const rt = await Runtime.load();

export const TINY: DiTConfig = {
  imageSize: 8,
  channels: 2,
  patch: 2,
  dim: 16,
  depth: 2,
  heads: 2,
  mlpRatio: 2,
  freqDim: 8,
  classes: 3,
};

/** A tiny DiT with every parameter random (no zero-initialised paths). */
function randomDiT(seed: number): DiT {
  const dit = new DiT(rt, TINY);
  rt.f32(dit.params, dit.size).set(randomF32(dit.size, seed, -0.3, 0.3));
  return dit;
}

/** L = Σ w ⊙ prediction (token layout), in f64 from the f32 forward. */
function loss(
  dit: DiT,
  x: Float32Array,
  t: number[],
  y: number[],
  w: Float32Array,
): number {
  const out = dit.forwardTokens(x, t, y, 2, true);
  const o = rt.f32(out, w.length);
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * o[i];
  return s;
}

Deno.test("DiT backward: the gradient matches finite differences along random directions", () => {
  const dit = randomDiT(1);
  const B = 2, px = TINY.imageSize ** 2;
  const x = randomF32(B * TINY.channels * px, 2);
  const t = [3, 700], y = [1, 3]; // 3 = the null label
  const nOut = B * dit.tokens * TINY.patch ** 2;
  const w = randomF32(nOut, 3);
  loss(dit, x, t, y, w);
  const dout = rt.arrayFrom(Float32Array, w);
  rt.f32(dit.grads, dit.size).fill(0);
  dit.backward(dout.ptr, B);
  const g = rt.f32(dit.grads, dit.size).slice();
  const theta = rt.f32(dit.params, dit.size).slice();
  // Per parameter tensor: the directional derivative g·u against
  // (L(θ + h·u) − L(θ − h·u)) / 2h. In f32, L carries ~1e-7 relative
  // rounding, so with h = 1e-2 the quotient is good to ~1e-4 of |g·u|
  // plus h² curvature terms: a 2 % tolerance is loose enough for f32 and
  // far tighter than any wrong term (those are O(1) off).
  const h = 1e-2;
  for (const spec of dit.specs) {
    const u = randomF32(spec.size, spec.offset + 11);
    let gu = 0;
    for (let i = 0; i < spec.size; i++) gu += g[spec.offset + i] * u[i];
    const shift = (sign: number) => {
      const p = rt.f32(dit.params, dit.size);
      p.set(theta);
      for (let i = 0; i < spec.size; i++) p[spec.offset + i] += sign * h * u[i];
      return loss(dit, x, t, y, w);
    };
    const num = (shift(1) - shift(-1)) / (2 * h);
    const scale = Math.max(Math.abs(num), Math.abs(gu), 1e-3);
    assert.ok(
      Math.abs(num - gu) <= 0.02 * scale,
      `${spec.name}: analytic ${gu.toExponential(4)} vs numeric ${
        num.toExponential(4)
      }`,
    );
  }
  dout.free();
  dit.dispose();
});

Deno.test("DiT: forward is deterministic and batch-independent per image", () => {
  const dit = randomDiT(5);
  const px = TINY.imageSize ** 2 * TINY.channels;
  const x = randomF32(3 * px, 6);
  const all = dit.forward(x, [10, 500, 999], [0, 1, 2], 3);
  const one = dit.forward(x.subarray(px, 2 * px), [500], [1], 1);
  const n = TINY.imageSize ** 2;
  assert.deepEqual(all.subarray(n, 2 * n), one);
  assert.deepEqual(dit.forward(x, [10, 500, 999], [0, 1, 2], 3), all);
  dit.dispose();
});

Deno.test("DiT: seeded initialisation is reproducible and adaLN-Zero starts at zero output", () => {
  const make = (seed: number) => {
    const dit = new DiT(rt, TINY);
    const rng = new Rng(rt, seed);
    dit.init((n) => rng.uniform(n), (n) => rng.normal(n));
    rng.free();
    return dit;
  };
  const a = make(7), b = make(7), c = make(8);
  const pa = rt.f32(a.params, a.size).slice();
  assert.deepEqual(rt.f32(b.params, b.size).slice(), pa);
  assert.notDeepEqual(rt.f32(c.params, c.size).slice(), pa);
  // Zero-initialised output layer: the untrained model predicts ε̂ = 0.
  const x = randomF32(TINY.channels * TINY.imageSize ** 2, 1);
  assert.ok(a.forward(x, [5], [0], 1).every((v) => v === 0));
  for (const d of [a, b, c]) d.dispose();
});

Deno.test("DiT: forward and backward write only their own buffers", () => {
  // Memory allocated right after a model's activation buffers must survive
  // its forward and backward passes (scratch sized for every weight's
  // transpose, the tape for every activation).
  for (const training of [false, true]) {
    const dit = randomDiT(9);
    const B = 3, px = TINY.imageSize ** 2 * TINY.channels;
    const x = randomF32(B * px, 10);
    const out = dit.forwardTokens(x, [1, 2, 3], [0, 1, 2], B, training);
    const fence = rt.array(Float32Array, 1 << 16);
    const pattern = randomF32(fence.length, 12);
    fence.view.set(pattern);
    dit.forwardTokens(x, [1, 2, 3], [0, 1, 2], B, training);
    if (training) {
      const dout = rt.arrayFrom(
        Float32Array,
        randomF32(B * dit.tokens * TINY.patch ** 2, 13),
      );
      dit.backward(dout.ptr, B);
      dout.free();
    }
    assert.deepEqual(fence.view, pattern);
    assert.ok(out > 0);
    fence.free();
    dit.dispose();
  }
});
