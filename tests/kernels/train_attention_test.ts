import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/train_attention.ts";
import { assertNmse, randomF32 } from "../helpers.ts";
import { assertGrad, numericGrad, Scope } from "./train_grad_helpers.ts";

const rt = await Runtime.load();

interface AttnCase {
  batch: number;
  tokens: number;
  heads: number;
  headDim: number;
}

/** Token counts off the tile sizes; 49 tokens as a 7 × 7 patch grid has. */
const CASES: AttnCase[] = [
  { batch: 1, tokens: 1, heads: 1, headDim: 4 },
  { batch: 2, tokens: 3, heads: 2, headDim: 4 },
  { batch: 1, tokens: 5, heads: 3, headDim: 8 },
  { batch: 2, tokens: 49, heads: 4, headDim: 16 },
];

function forwardWasm(s: Scope, c: AttnCase, qkv: Float32Array) {
  const dim = c.heads * c.headDim, rows = c.batch * c.tokens;
  const po = s.f32(rows * dim);
  const pp = s.f32(c.batch * c.heads * c.tokens * c.tokens);
  const pq = s.f32(qkv);
  rt.k.mha_forward_f32(
    po,
    pp,
    pq,
    s.f32(c.headDim * c.tokens),
    c.batch,
    c.tokens,
    c.heads,
    c.headDim,
  );
  return { po, pp, pq };
}

Deno.test("mha_forward_f32 and mha_backward_f32 match the twins", () => {
  CASES.forEach((c, i) => {
    const dim = c.heads * c.headDim, rows = c.batch * c.tokens;
    const np = c.batch * c.heads * c.tokens * c.tokens;
    const qkv = randomF32(rows * 3 * dim, i, -2, 2);
    const dout = randomF32(rows * dim, i + 50);
    const s = new Scope(rt);
    const { po, pp, pq } = forwardWasm(s, c, qkv);
    const out = new Float32Array(rows * dim), probs = new Float32Array(np);
    ref.mha_forward_f32(out, probs, qkv, c.batch, c.tokens, c.heads, c.headDim);
    assertNmse(s.read(po, rows * dim), out, 1e-7, `out ${JSON.stringify(c)}`);
    assertNmse(s.read(pp, np), probs, 1e-7, "probs");
    const pd = s.f32(new Float32Array(rows * 3 * dim).fill(NaN));
    rt.k.mha_backward_f32(
      pd,
      s.f32(dout),
      pq,
      pp,
      s.f32(c.tokens * c.tokens + c.headDim * c.tokens),
      c.batch,
      c.tokens,
      c.heads,
      c.headDim,
    );
    const dqkv = new Float32Array(rows * 3 * dim);
    ref.mha_backward_f32(
      dqkv,
      dout,
      qkv,
      probs,
      c.batch,
      c.tokens,
      c.heads,
      c.headDim,
    );
    assertNmse(s.read(pd, rows * 3 * dim), dqkv, 1e-7, "dqkv");
    s.free();
  });
});

Deno.test("mha_backward_f32 matches finite differences", () => {
  for (const c of CASES.slice(0, 3)) {
    const dim = c.heads * c.headDim, rows = c.batch * c.tokens;
    const qkv = randomF32(rows * 3 * dim, 7, -2, 2);
    const dout = randomF32(rows * dim, 8);
    const s = new Scope(rt);
    const { pp, pq } = forwardWasm(s, c, qkv);
    const pd = s.f32(rows * 3 * dim);
    rt.k.mha_backward_f32(
      pd,
      s.f32(dout),
      pq,
      pp,
      s.f32(c.tokens * c.tokens + c.headDim * c.tokens),
      c.batch,
      c.tokens,
      c.heads,
      c.headDim,
    );
    const num = numericGrad(
      (v) => {
        const out = new Float64Array(rows * dim);
        const probs = new Float64Array(c.batch * c.heads * c.tokens * c.tokens);
        ref.mha_forward_f32(
          out,
          probs,
          v,
          c.batch,
          c.tokens,
          c.heads,
          c.headDim,
        );
        return out;
      },
      qkv,
      dout,
    );
    assertGrad(s.read(pd, rows * 3 * dim), num, `dqkv ${JSON.stringify(c)}`);
    s.free();
  }
});
