import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/activation.ts";
import { assertNmse, randomF32 } from "../helpers.ts";

const rt = await Runtime.load();

interface Case {
  n: number;
  /** Inputs uniform in [-spread, spread). */
  spread: number;
  seed: number;
}

const SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 63, 768, 2051];

const CASES: Case[] = [
  ...SIZES.map((n, i) => ({ n, spread: 4, seed: 20 + i })),
  // Saturation: expf(−x) overflows to inf or underflows to 0 somewhere here.
  { n: 257, spread: 120, seed: 1 },
  { n: 33, spread: 1e-4, seed: 2 },
];

type Unary = (out: number, x: number, n: number) => void;
type Binary = (out: number, a: number, b: number, n: number) => void;

/** Runs a kernel on copies of the inputs, into a fresh buffer and in place. */
function runBoth(
  inputs: Float32Array[],
  call: (out: number, ptrs: number[]) => void,
): Float32Array[] {
  const n = inputs[0].length;
  const arrays = inputs.map((x) => rt.arrayFrom(Float32Array, x));
  const out = rt.array(Float32Array, n);
  call(out.ptr, arrays.map((a) => a.ptr));
  const fresh = out.view.slice();
  inputs.forEach((x, i) => assert.deepEqual(arrays[i].view, x, "input kept"));
  call(arrays[0].ptr, arrays.map((a) => a.ptr));
  const inPlace = arrays[0].view.slice();
  for (const a of [...arrays, out]) a.free();
  return [fresh, inPlace];
}

const UNARY: [
  string,
  Unary,
  (o: Float32Array, x: Float32Array, n: number) => void,
][] = [
  ["silu_f32", rt.k.silu_f32, ref.silu_f32],
  ["gelu_f32", rt.k.gelu_f32, ref.gelu_f32],
];

for (const [name, kernel, twin] of UNARY) {
  Deno.test(`${name} matches the twin`, () => {
    for (const c of CASES) {
      const x = randomF32(c.n, c.seed, -c.spread, c.spread);
      const want = new Float32Array(c.n);
      twin(want, x, c.n);
      for (const got of runBoth([x], (o, [p]) => kernel(o, p, c.n))) {
        // Kernel and twin differ only by expf/tanhf versus the correctly
        // rounded exp/tanh (≤ 1 ULP, NMSE ≲ 1e-14).
        assertNmse(got, want, undefined, `${name} ${JSON.stringify(c)}`);
      }
    }
  });
}

Deno.test("swiglu_f32 matches the twin", () => {
  for (const c of CASES) {
    const g = randomF32(c.n, c.seed, -c.spread, c.spread);
    const u = randomF32(c.n, c.seed + 500, -2, 2);
    const want = new Float32Array(c.n);
    ref.swiglu_f32(want, g, u, c.n);
    for (
      const got of runBoth(
        [g, u],
        (o, [pg, pu]) => rt.k.swiglu_f32(o, pg, pu, c.n),
      )
    ) {
      assertNmse(got, want, undefined, `swiglu ${JSON.stringify(c)}`);
    }
  }
});

Deno.test("silu and gelu: known values and limits", () => {
  const x = new Float32Array([0, 1, -1, 30, -30, 200, -200]);
  const [silu] = runBoth([x], (o, [p]) => rt.k.silu_f32(o, p, x.length));
  const [gelu] = runBoth([x], (o, [p]) => rt.k.gelu_f32(o, p, x.length));
  const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
  const geluTanh = (v: number) =>
    0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  for (let i = 0; i < x.length; i++) {
    // Against f64 evaluations. SiLU is a product of well-conditioned
    // factors: a few ULP of the result (the last case underflows to 0).
    const s = x[i] * sigmoid(x[i]);
    assert.ok(
      Math.abs(silu[i] - s) <= 4 * 2 ** -24 * Math.abs(s) + 1e-40,
      `silu(${x[i]}) = ${silu[i]}, want ${s}`,
    );
    // GELU's 1 + tanh(u) cancels for u ≪ 0 (as in every tanh-form GELU):
    // the error is bounded by one ULP of 1 times |x|/2, not by the result.
    assert.ok(
      Math.abs(gelu[i] - geluTanh(x[i])) <= 2 * 2 ** -24 * Math.abs(x[i]),
      `gelu(${x[i]}) = ${gelu[i]}`,
    );
  }
});

const BINARY: [
  string,
  Binary,
  (o: Float32Array, a: Float32Array, b: Float32Array, n: number) => void,
][] = [
  ["add_f32", rt.k.add_f32, ref.add_f32],
  ["mul_f32", rt.k.mul_f32, ref.mul_f32],
];

for (const [name, kernel, twin] of BINARY) {
  Deno.test(`${name} equals the twin bit for bit`, () => {
    for (const c of CASES) {
      const a = randomF32(c.n, c.seed, -c.spread, c.spread);
      const b = randomF32(c.n, c.seed + 700, -c.spread, c.spread);
      const want = new Float32Array(c.n);
      twin(want, a, b, c.n);
      for (
        const got of runBoth([a, b], (o, [pa, pb]) => kernel(o, pa, pb, c.n))
      ) {
        // One correctly rounded operation per element: nothing may differ.
        assert.deepEqual(got, want, `${name} n=${c.n}`);
      }
    }
  });
}

Deno.test("scale_f32 equals the twin bit for bit", () => {
  for (const c of CASES) {
    for (const s of [0.125, -3.3, 0]) {
      const a = randomF32(c.n, c.seed, -c.spread, c.spread);
      const want = new Float32Array(c.n);
      ref.scale_f32(want, a, s, c.n);
      for (
        const got of runBoth([a], (o, [p]) => rt.k.scale_f32(o, p, s, c.n))
      ) {
        assert.deepEqual(got, want, `scale_f32 n=${c.n} s=${s}`);
      }
    }
  }
});
