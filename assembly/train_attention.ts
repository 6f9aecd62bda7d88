// Full (non-causal) multi-head self-attention over a batch of token sets,
// forward and backward, for training and for sampling a DiT: every patch of
// an image attends to every other patch.
//
// Layout: qkv is `batch · tokens` rows of 3 · dim (dim = heads · headDim):
// the row of token t holds q (heads × headDim), then k, then v. out and dout
// are `batch · tokens` rows of dim. probs keeps the softmax of every
// (image, head): batch × heads × tokens × tokens, written by the forward and
// read by the backward. Scores are scaled by 1 / sqrt(headDim).
import { gemmCore, transposeCore } from "./train_matmul";
import { expf4 } from "./train_math";

/** In-place softmax of a row of n scores already scaled, with the vector exp. */
@inline
function softmaxRow(p: usize, n: i32): void {
  let mx = load<f32>(p);
  for (let j = 1; j < n; j++) mx = max(mx, load<f32>(p + (<usize>j << 2)));
  const mv = f32x4.splat(mx);
  let acc = f32x4.splat(0);
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    const e = expf4(f32x4.sub(v128.load(p + o), mv));
    v128.store(p + o, e);
    acc = f32x4.add(acc, e);
  }
  let sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; j < n; j++) {
    const e = Mathf.exp(load<f32>(p + (<usize>j << 2)) - mx);
    store<f32>(p + (<usize>j << 2), e);
    sum += e;
  }
  const inv = <f32>1 / sum;
  for (j = 0; j < n; j++) {
    store<f32>(p + (<usize>j << 2), load<f32>(p + (<usize>j << 2)) * inv);
  }
}

/**
 * out = softmax(q kᵀ / sqrt(headDim)) v per image and head. scratch:
 * headDim · tokens floats (kᵀ of one head).
 */
export function mha_forward_f32(
  out: usize,
  probs: usize,
  qkv: usize,
  scratch: usize,
  batch: i32,
  tokens: i32,
  heads: i32,
  headDim: i32,
): void {
  const dim = heads * headDim;
  const ld = 3 * dim;
  const tt = <usize>tokens * tokens;
  const scale = <f32>1 / Mathf.sqrt(<f32>headDim);
  for (let b = 0; b < batch; b++) {
    const base = qkv + ((<usize>b * tokens * ld) << 2);
    const ob = out + ((<usize>b * tokens * dim) << 2);
    for (let h = 0; h < heads; h++) {
      const q = base + ((<usize>h * headDim) << 2);
      const k = q + (<usize>dim << 2);
      const v = k + (<usize>dim << 2);
      const p = probs + ((<usize>(b * heads + h) * tt) << 2);
      transposeCore(scratch, k, tokens, headDim, ld, tokens);
      gemmCore(p, q, scratch, tokens, tokens, headDim, ld, 1, tokens, tokens, 0);
      for (let i = 0; i < tokens; i++) {
        const row = p + ((<usize>i * tokens) << 2);
        for (let j = 0; j < tokens; j++) {
          store<f32>(row + (<usize>j << 2), load<f32>(row + (<usize>j << 2)) * scale);
        }
        softmaxRow(row, tokens);
      }
      gemmCore(
        ob + ((<usize>h * headDim) << 2),
        p,
        v,
        tokens,
        headDim,
        tokens,
        tokens,
        1,
        ld,
        dim,
        0,
      );
    }
  }
}

/**
 * Gradients of q, k and v (written into dqkv, same layout as qkv) given dout.
 * scratch: tokens · tokens + headDim · tokens floats.
 *   dv = pᵀ dout;  dp = dout vᵀ;  ds = p ⊙ (dp − rowsum(dp ⊙ p)) / sqrt(headDim)
 *   dq = ds k;     dk = dsᵀ q
 */
export function mha_backward_f32(
  dqkv: usize,
  dout: usize,
  qkv: usize,
  probs: usize,
  scratch: usize,
  batch: i32,
  tokens: i32,
  heads: i32,
  headDim: i32,
): void {
  const dim = heads * headDim;
  const ld = 3 * dim;
  const tt = <usize>tokens * tokens;
  const scale = <f32>1 / Mathf.sqrt(<f32>headDim);
  const ds = scratch;
  const vt = scratch + (tt << 2);
  for (let b = 0; b < batch; b++) {
    const base = qkv + ((<usize>b * tokens * ld) << 2);
    const dbase = dqkv + ((<usize>b * tokens * ld) << 2);
    const go = dout + ((<usize>b * tokens * dim) << 2);
    for (let h = 0; h < heads; h++) {
      const hoff = <usize>h * headDim << 2;
      const q = base + hoff, k = q + (<usize>dim << 2), v = k + (<usize>dim << 2);
      const dq = dbase + hoff, dk = dq + (<usize>dim << 2), dv = dk + (<usize>dim << 2);
      const g = go + hoff;
      const p = probs + ((<usize>(b * heads + h) * tt) << 2);
      // dv = pᵀ · dout
      gemmCore(dv, p, g, tokens, headDim, tokens, 1, tokens, dim, ld, 0);
      // dp = dout · vᵀ
      transposeCore(vt, v, tokens, headDim, ld, tokens);
      gemmCore(ds, g, vt, tokens, tokens, headDim, dim, 1, tokens, tokens, 0);
      for (let i = 0; i < tokens; i++) {
        const pr = p + ((<usize>i * tokens) << 2);
        const dr = ds + ((<usize>i * tokens) << 2);
        let dot: f32 = 0;
        for (let j = 0; j < tokens; j++) {
          dot += load<f32>(pr + (<usize>j << 2)) * load<f32>(dr + (<usize>j << 2));
        }
        for (let j = 0; j < tokens; j++) {
          const o = <usize>j << 2;
          store<f32>(dr + o, load<f32>(pr + o) * (load<f32>(dr + o) - dot) * scale);
        }
      }
      // dq = ds · k;  dk = dsᵀ · q
      gemmCore(dq, ds, k, tokens, headDim, tokens, tokens, 1, ld, ld, 0);
      gemmCore(dk, ds, q, tokens, headDim, tokens, 1, tokens, ld, ld, 0);
    }
  }
}
