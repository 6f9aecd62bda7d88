/**
 * Plain-TS twins of assembly/train_attention.ts: attention written per
 * query, straight from the definition. Same layouts as the kernels (qkv
 * rows of q | k | v, probs batch × heads × tokens × tokens); no scratch.
 */
import type { Floats } from "./train_matmul.ts";

export function mha_forward_f32(
  out: Floats,
  probs: Floats,
  qkv: Floats,
  batch: number,
  tokens: number,
  heads: number,
  headDim: number,
): void {
  const dim = heads * headDim, ld = 3 * dim;
  const scale = 1 / Math.sqrt(headDim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const p0 = (b * heads + h) * tokens * tokens;
      for (let i = 0; i < tokens; i++) {
        const qi = (b * tokens + i) * ld + h * headDim;
        let max = -Infinity;
        for (let j = 0; j < tokens; j++) {
          const kj = (b * tokens + j) * ld + dim + h * headDim;
          let s = 0;
          for (let d = 0; d < headDim; d++) s += qkv[qi + d] * qkv[kj + d];
          probs[p0 + i * tokens + j] = s * scale;
          max = Math.max(max, s * scale);
        }
        let sum = 0;
        for (let j = 0; j < tokens; j++) {
          const e = Math.exp(probs[p0 + i * tokens + j] - max);
          probs[p0 + i * tokens + j] = e;
          sum += e;
        }
        for (let j = 0; j < tokens; j++) probs[p0 + i * tokens + j] /= sum;
        const oi = (b * tokens + i) * dim + h * headDim;
        for (let d = 0; d < headDim; d++) {
          let s = 0;
          for (let j = 0; j < tokens; j++) {
            const vj = (b * tokens + j) * ld + 2 * dim + h * headDim;
            s += probs[p0 + i * tokens + j] * qkv[vj + d];
          }
          out[oi + d] = s;
        }
      }
    }
  }
}

export function mha_backward_f32(
  dqkv: Floats,
  dout: Floats,
  qkv: Floats,
  probs: Floats,
  batch: number,
  tokens: number,
  heads: number,
  headDim: number,
): void {
  const dim = heads * headDim, ld = 3 * dim;
  const scale = 1 / Math.sqrt(headDim);
  const ds = new Float64Array(tokens);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const p0 = (b * heads + h) * tokens * tokens;
      const row = (t: number) => (b * tokens + t) * ld + h * headDim;
      for (let t = 0; t < tokens; t++) {
        for (let d = 0; d < headDim; d++) {
          dqkv[row(t) + d] = 0;
          dqkv[row(t) + dim + d] = 0;
          dqkv[row(t) + 2 * dim + d] = 0;
        }
      }
      for (let i = 0; i < tokens; i++) {
        const go = (b * tokens + i) * dim + h * headDim;
        // dp_ij = dout_i · v_j, then the softmax Jacobian.
        let dot = 0;
        for (let j = 0; j < tokens; j++) {
          let s = 0;
          for (let d = 0; d < headDim; d++) {
            s += dout[go + d] * qkv[row(j) + 2 * dim + d];
          }
          ds[j] = s;
          dot += s * probs[p0 + i * tokens + j];
        }
        for (let j = 0; j < tokens; j++) {
          const p = probs[p0 + i * tokens + j];
          const g = p * (ds[j] - dot) * scale;
          for (let d = 0; d < headDim; d++) {
            dqkv[row(i) + d] += g * qkv[row(j) + dim + d];
            dqkv[row(j) + dim + d] += g * qkv[row(i) + d];
            dqkv[row(j) + 2 * dim + d] += p * dout[go + d];
          }
        }
      }
    }
  }
}
