import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/train_matmul.ts";
import { assertNmse, randomF32 } from "../helpers.ts";
import { assertGrad, numericGrad, Scope } from "./train_grad_helpers.ts";

const rt = await Runtime.load();

interface GemmCase {
  m: number;
  n: number;
  k: number;
  /** Extra elements at the end of each row (strides larger than the width). */
  pad: number;
  beta: number;
}

/** Shapes around the 4 × 8 tile: tails in m, n and both, k of 1, a large one. */
const CASES: GemmCase[] = [
  { m: 1, n: 1, k: 1, pad: 0, beta: 0 },
  { m: 4, n: 8, k: 5, pad: 0, beta: 0 },
  { m: 5, n: 9, k: 3, pad: 0, beta: 0 },
  { m: 7, n: 13, k: 17, pad: 3, beta: 0 },
  { m: 3, n: 4, k: 2, pad: 1, beta: 1 },
  { m: 49, n: 49, k: 16, pad: 0, beta: 0 },
  { m: 33, n: 20, k: 64, pad: 5, beta: 0.5 },
  { m: 200, n: 96, k: 128, pad: 0, beta: 1 },
];

type Form = "nn" | "tn" | "nt";

/** Layouts of A and B for each form, with row strides. */
function shapes(form: Form, c: GemmCase) {
  const [ar, ac] = form === "tn" ? [c.k, c.m] : [c.m, c.k];
  const [br, bc] = form === "nt" ? [c.n, c.k] : [c.k, c.n];
  return {
    ar,
    lda: ac + c.pad,
    br,
    ldb: bc + c.pad,
    ldc: c.n + c.pad,
  };
}

function runBoth(form: Form, c: GemmCase, seed: number) {
  const s = shapes(form, c);
  const a = randomF32(s.ar * s.lda, seed);
  const b = randomF32(s.br * s.ldb, seed + 1);
  const c0 = randomF32(c.m * s.ldc, seed + 2);
  const expected = Float32Array.from(c0);
  ref[`gemm_${form}_f32`](
    expected,
    a,
    b,
    c.m,
    c.n,
    c.k,
    s.lda,
    s.ldb,
    s.ldc,
    c.beta,
  );
  const w = new Scope(rt);
  const pc = w.f32(c0), pa = w.f32(a), pb = w.f32(b);
  if (form === "nt") {
    rt.k.gemm_nt_f32(
      pc,
      pa,
      pb,
      w.f32(c.n * c.k),
      c.m,
      c.n,
      c.k,
      s.lda,
      s.ldb,
      s.ldc,
      c.beta,
    );
  } else {
    rt.k[`gemm_${form}_f32`](
      pc,
      pa,
      pb,
      c.m,
      c.n,
      c.k,
      s.lda,
      s.ldb,
      s.ldc,
      c.beta,
    );
  }
  const actual = w.read(pc, c.m * s.ldc);
  w.free();
  return { actual, expected, ldc: s.ldc, c0 };
}

for (const form of ["nn", "tn", "nt"] as Form[]) {
  Deno.test(`gemm_${form}_f32 matches the twin`, () => {
    CASES.forEach((c, i) => {
      const { actual, expected, ldc, c0 } = runBoth(form, c, 10 * i);
      assertNmse(actual, expected, 1e-7, `${form} ${JSON.stringify(c)}`);
      // The padding past each row's n columns is never written.
      for (let r = 0; r < c.m; r++) {
        for (let j = c.n; j < ldc; j++) {
          assert.equal(actual[r * ldc + j], c0[r * ldc + j]);
        }
      }
    });
  });
}

Deno.test("gemm: beta = 0 overwrites C even where it held NaN", () => {
  const w = new Scope(rt);
  const m = 5, n = 9, k = 3;
  const pc = w.f32(new Float32Array(m * n).fill(NaN));
  const a = randomF32(m * k, 1), b = randomF32(k * n, 2);
  rt.k.gemm_nn_f32(pc, w.f32(a), w.f32(b), m, n, k, k, n, n, 0);
  const out = w.read(pc, m * n);
  assert.ok(out.every(Number.isFinite));
  const expected = new Float32Array(m * n);
  ref.gemm_nn_f32(expected, a, b, m, n, k, k, n, n, 0);
  assertNmse(out, expected);
  w.free();
});

Deno.test("linear backward: dX = dY·W and dW = dYᵀ·X match finite differences", () => {
  // y = X Wᵀ (rows × out); L = Σ dY ⊙ y.
  const rows = 6, inF = 5, outF = 7;
  const x = randomF32(rows * inF, 3), wt = randomF32(outF * inF, 4);
  const dy = randomF32(rows * outF, 5);
  const fwd = (xs: Float64Array, ws: Float64Array) => {
    const y = new Float64Array(rows * outF);
    ref.gemm_nt_f32(y, xs, ws, rows, outF, inF, inF, inF, outF, 0);
    return y;
  };
  const s = new Scope(rt);
  const pdx = s.f32(rows * inF), pdw = s.f32(outF * inF);
  const px = s.f32(x), pw = s.f32(wt), pdy = s.f32(dy);
  rt.k.gemm_nn_f32(pdx, pdy, pw, rows, inF, outF, outF, inF, inF, 0);
  rt.k.gemm_tn_f32(pdw, pdy, px, outF, inF, rows, outF, inF, inF, 0);
  assertGrad(
    s.read(pdx, rows * inF),
    numericGrad((v) => fwd(v, Float64Array.from(wt)), x, dy),
    "dX",
  );
  assertGrad(
    s.read(pdw, outF * inF),
    numericGrad((v) => fwd(Float64Array.from(x), v), wt, dy),
    "dW",
  );
  s.free();
});
