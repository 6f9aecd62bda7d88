/**
 * Plain-TS twins of assembly/attention.ts, written after run.c's loops:
 * one pair, one key, one element at a time, rounding every step to f32.
 */
import { softmax_f32 } from "./softmax.ts";

const f32 = Math.fround;

/** In-place RoPE over `heads` heads of `headDim` floats at `pos`. */
export function rope_f32(
  x: Float32Array,
  heads: number,
  headDim: number,
  pos: number,
  theta: number,
): void {
  for (let d = 0; d + 1 < headDim; d += 2) {
    const freq = f32(1 / f32(Math.pow(f32(theta), f32(d / headDim))));
    const angle = f32(pos * freq);
    const c = f32(Math.cos(angle)), s = f32(Math.sin(angle));
    for (let h = 0; h < heads; h++) {
      const i = h * headDim + d;
      const v0 = x[i], v1 = x[i + 1];
      x[i] = f32(f32(v0 * c) - f32(v1 * s));
      x[i + 1] = f32(f32(v0 * s) + f32(v1 * c));
    }
  }
}

/**
 * Attention of `group` query heads (q: group × headDim) over nPos keys and
 * values, `kvStride` floats apart in k and v; scratch holds nPos scores.
 */
export function attention_f32(
  out: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  scratch: Float32Array,
  group: number,
  headDim: number,
  nPos: number,
  kvStride: number,
): void {
  const norm = f32(Math.sqrt(headDim));
  for (let g = 0; g < group; g++) {
    const qo = g * headDim;
    for (let t = 0; t < nPos; t++) {
      let score = 0;
      for (let i = 0; i < headDim; i++) {
        score = f32(score + f32(q[qo + i] * k[t * kvStride + i]));
      }
      scratch[t] = f32(score / norm);
    }
    softmax_f32(scratch, scratch, nPos, 1);
    for (let i = 0; i < headDim; i++) out[qo + i] = 0;
    for (let t = 0; t < nPos; t++) {
      const a = scratch[t];
      for (let i = 0; i < headDim; i++) {
        out[qo + i] = f32(out[qo + i] + f32(a * v[t * kvStride + i]));
      }
    }
  }
}
