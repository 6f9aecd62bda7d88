import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/attention.ts";
import { assertNmse, randomF32 } from "../helpers.ts";

const rt = await Runtime.load();

interface RopeCase {
  heads: number;
  headDim: number;
  pos: number;
  theta: number;
}

const ROPE_CASES: RopeCase[] = [
  { heads: 1, headDim: 2, pos: 1, theta: 10000 },
  { heads: 3, headDim: 4, pos: 5, theta: 10000 },
  { heads: 2, headDim: 6, pos: 17, theta: 10000 }, // a lone pair after the SIMD pairs
  { heads: 8, headDim: 8, pos: 255, theta: 10000 }, // stories260K's shape
  { heads: 5, headDim: 10, pos: 3, theta: 10000 },
  { heads: 12, headDim: 64, pos: 1023, theta: 10000 },
  { heads: 4, headDim: 66, pos: 100, theta: 10000 },
  { heads: 2, headDim: 128, pos: 4095, theta: 500000 }, // Llama 3's theta
  { heads: 2, headDim: 128, pos: 77, theta: 1e6 },
  { heads: 4, headDim: 64, pos: 0, theta: 10000 },
  { heads: 0, headDim: 64, pos: 9, theta: 10000 },
];

Deno.test("rope_f32 matches the twin", () => {
  ROPE_CASES.forEach((c, i) => {
    const x = randomF32(c.heads * c.headDim, 40 + i, -2, 2);
    const want = x.slice();
    ref.rope_f32(want, c.heads, c.headDim, c.pos, c.theta);
    const a = rt.arrayFrom(Float32Array, x);
    rt.k.rope_f32(a.ptr, c.heads, c.headDim, c.pos, c.theta);
    // Angles reach pos · 1 rad; Mathf.pow/cos/sin and the correctly rounded
    // f64 ones differ by ≤ 1 ULP, so outputs differ by ≲ pos · 2⁻²³ · |x|
    // in rare pairs: NMSE stays far under 1e-7 for pos < 2¹².
    assertNmse(a.view, want, undefined, `rope ${JSON.stringify(c)}`);
    a.free();
  });
});

Deno.test("rope_f32 is the rotation pos · theta^(−d/headDim), within f32 rounding", () => {
  ROPE_CASES.forEach((c, i) => {
    const x = randomF32(c.heads * c.headDim, 60 + i, -2, 2);
    const a = rt.arrayFrom(Float32Array, x);
    rt.k.rope_f32(a.ptr, c.heads, c.headDim, c.pos, c.theta);
    const y = a.view;
    for (let h = 0; h < c.heads; h++) {
      for (let d = 0; d < c.headDim; d += 2) {
        const angle = c.pos * Math.pow(c.theta, -d / c.headDim);
        const cos = Math.cos(angle), sin = Math.sin(angle);
        const [v0, v1] = [x[h * c.headDim + d], x[h * c.headDim + d + 1]];
        // f32 angle: a few roundings of relative 2⁻²⁴ each (d/headDim,
        // powf, 1/·, pos·), so |Δangle| ≤ 4 · 2⁻²⁴ · angle; then cos/sin and
        // the products add a few ULP of |v|.
        const r = Math.hypot(v0, v1);
        const tol = r * (4 * 2 ** -24 * angle + 6 * 2 ** -24);
        const i0 = h * c.headDim + d;
        assert.ok(
          Math.abs(y[i0] - (v0 * cos - v1 * sin)) <= tol,
          `${JSON.stringify(c)} d=${d}`,
        );
        assert.ok(
          Math.abs(y[i0 + 1] - (v0 * sin + v1 * cos)) <= tol,
          `${JSON.stringify(c)} d=${d}`,
        );
      }
    }
    a.free();
  });
});

Deno.test("rope_f32 at position 0 changes nothing", () => {
  const x = randomF32(3 * 66, 5);
  const a = rt.arrayFrom(Float32Array, x);
  rt.k.rope_f32(a.ptr, 3, 66, 0, 10000);
  assert.deepEqual(a.view, x);
  a.free();
});

interface AttentionCase {
  group: number;
  headDim: number;
  nPos: number;
  /** Floats between positions beyond headDim (other KV heads in a row). */
  pad: number;
  /** q and k are uniform in [−spread, spread). */
  spread: number;
  seed: number;
}

const ATTENTION_CASES: AttentionCase[] = [
  { group: 1, headDim: 1, nPos: 1, pad: 0, spread: 1, seed: 1 },
  { group: 1, headDim: 3, nPos: 2, pad: 1, spread: 1, seed: 2 },
  { group: 2, headDim: 4, nPos: 5, pad: 0, spread: 1, seed: 3 },
  { group: 1, headDim: 5, nPos: 9, pad: 3, spread: 1, seed: 4 },
  { group: 2, headDim: 8, nPos: 33, pad: 24, spread: 2, seed: 5 }, // stories260K: 4 KV heads of 8
  { group: 4, headDim: 64, nPos: 100, pad: 192, spread: 1, seed: 6 },
  { group: 1, headDim: 65, nPos: 7, pad: 0, spread: 1, seed: 7 },
  { group: 3, headDim: 128, nPos: 257, pad: 128, spread: 0.5, seed: 8 },
  { group: 1, headDim: 16, nPos: 40, pad: 0, spread: 8, seed: 9 }, // peaked weights
];

function attentionWasm(
  c: AttentionCase,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
): Float32Array {
  const [qa, ka, va] = [q, k, v].map((x) => rt.arrayFrom(Float32Array, x));
  const scratch = rt.array(Float32Array, Math.max(c.nPos, 1));
  const out = rt.array(Float32Array, c.group * c.headDim);
  out.view.fill(NaN); // must be overwritten
  rt.k.attention_f32(
    out.ptr,
    qa.ptr,
    ka.ptr,
    va.ptr,
    scratch.ptr,
    c.group,
    c.headDim,
    c.nPos,
    c.headDim + c.pad,
  );
  const result = out.view.slice();
  for (const a of [qa, ka, va, scratch, out]) a.free();
  return result;
}

function inputs(c: AttentionCase) {
  const stride = c.headDim + c.pad;
  const q = randomF32(c.group * c.headDim, c.seed, -c.spread, c.spread);
  const k = randomF32(c.nPos * stride, c.seed + 100, -c.spread, c.spread);
  const v = randomF32(c.nPos * stride, c.seed + 200, -1, 1);
  return { q, k, v, stride };
}

Deno.test("attention_f32 matches the twin", () => {
  for (const c of ATTENTION_CASES) {
    const { q, k, v, stride } = inputs(c);
    const want = new Float32Array(c.group * c.headDim);
    ref.attention_f32(
      want,
      q,
      k,
      v,
      new Float32Array(c.nPos),
      c.group,
      c.headDim,
      c.nPos,
      stride,
    );
    assertNmse(
      attentionWasm(c, q, k, v),
      want,
      undefined,
      `attention ${JSON.stringify(c)}`,
    );
  }
});

Deno.test("attention_f32 over one position returns its value exactly", () => {
  const c = { group: 3, headDim: 7, nPos: 1, pad: 2, spread: 3, seed: 11 };
  const { q, k, v } = inputs(c);
  const got = attentionWasm(c, q, k, v);
  for (let g = 0; g < c.group; g++) {
    assert.deepEqual(got.slice(g * 7, g * 7 + 7), v.slice(0, 7));
  }
});

Deno.test("attention_f32 with equal keys averages the values", () => {
  const c = { group: 2, headDim: 12, nPos: 10, pad: 0, spread: 1, seed: 12 };
  const { q, v } = inputs(c);
  const k = new Float32Array(c.nPos * 12);
  for (let t = 0; t < c.nPos; t++) k.set(q.slice(0, 12), t * 12);
  const got = attentionWasm(c, q, k, v);
  for (let g = 0; g < c.group; g++) {
    for (let i = 0; i < 12; i++) {
      let mean = 0;
      for (let t = 0; t < c.nPos; t++) mean += v[t * 12 + i] / c.nPos;
      // Weights 1/10 to a few ULP, ten f32 additions of |v| ≤ 1.
      assert.ok(Math.abs(got[g * 12 + i] - mean) < 1e-6, `g=${g} i=${i}`);
    }
  }
});

Deno.test("attention_f32 over no positions writes zeros", () => {
  const c = { group: 2, headDim: 6, nPos: 0, pad: 0, spread: 1, seed: 13 };
  const { q, k, v } = inputs(c);
  assert.deepEqual(attentionWasm(c, q, k, v), new Float32Array(12));
});
