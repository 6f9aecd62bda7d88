// Rotary position embedding and single-query attention over a KV cache.
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/attention.ts.

import { softmax_f32 } from "./softmax";

/**
 * Rotates `heads` contiguous heads of `headDim` floats (headDim even) in
 * place for position `pos`. Pair (d, d+1) turns by pos · freq with
 * freq = 1 / powf(theta, d / headDim), every step in f32 as run.c takes
 * it, so angles (and their rounding) agree with llama2.c.
 *
 * Two pairs fill one v128 [a0, b0, a1, b1]; with c = [c0, c0, c1, c1],
 * s = [−s0, s0, −s1, s1] and the pairs swapped, v·c + swap(v)·s gives
 * [a0c0 − b0s0, b0c0 + a0s0, …]: the same roundings as the scalar form.
 */
export function rope_f32(
  x: usize,
  heads: i32,
  headDim: i32,
  pos: i32,
  theta: f32,
): void {
  const pairs = headDim >> 1;
  const fpos = <f32> pos;
  const fdim = <f32> headDim;
  const stride = <usize> headDim << 2;
  let j = 0;
  for (; j + 2 <= pairs; j += 2) {
    const d = j << 1;
    const a0 = fpos * (<f32> 1 / Mathf.pow(theta, <f32> d / fdim));
    const a1 = fpos * (<f32> 1 / Mathf.pow(theta, <f32> (d + 2) / fdim));
    const c0 = Mathf.cos(a0), s0 = Mathf.sin(a0);
    const c1 = Mathf.cos(a1), s1 = Mathf.sin(a1);
    let vc = f32x4.splat(c0);
    vc = f32x4.replace_lane(vc, 2, c1);
    vc = f32x4.replace_lane(vc, 3, c1);
    let vs = f32x4.splat(-s0);
    vs = f32x4.replace_lane(vs, 1, s0);
    vs = f32x4.replace_lane(vs, 2, -s1);
    vs = f32x4.replace_lane(vs, 3, s1);
    let p = x + (<usize> d << 2);
    for (let h = 0; h < heads; h++, p += stride) {
      const v = v128.load(p);
      const swapped = v128.shuffle<f32>(v, v, 1, 0, 3, 2);
      v128.store(p, f32x4.add(f32x4.mul(v, vc), f32x4.mul(swapped, vs)));
    }
  }
  if (j < pairs) {
    // headDim ≡ 2 (mod 4): the last pair alone.
    const d = j << 1;
    const a = fpos * (<f32> 1 / Mathf.pow(theta, <f32> d / fdim));
    const c = Mathf.cos(a), s = Mathf.sin(a);
    let p = x + (<usize> d << 2);
    for (let h = 0; h < heads; h++, p += stride) {
      const v0 = load<f32>(p), v1 = load<f32>(p, 4);
      store<f32>(p, v0 * c - v1 * s);
      store<f32>(p, v0 * s + v1 * c, 4);
    }
  }
}

/** Σ a[i] · b[i] over n floats, four lanes at a time. */
// @ts-ignore: decorator

function dot(a: usize, b: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    acc = f32x4.add(acc, f32x4.mul(v128.load(a + p), v128.load(b + p)));
  }
  let s: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) {
    const p = <usize> i << 2;
    s += load<f32>(a + p) * load<f32>(b + p);
  }
  return s;
}

/**
 * Single-query attention for one KV head and its `group` query heads:
 * for each query head, scores s[t] = q·k[t] / sqrtf(headDim) for
 * t < nPos (in scratch), softmax, then out = Σ_t p[t] · v[t] accumulated in
 * t order as run.c does. Keys and values sit `kvStride` floats apart.
 * nPos = 0 gives zeros.
 *
 * The group's heads are done one after another: the K and V rows they share
 * are still in cache for the second one, and scratch stays nPos floats.
 */
export function attention_f32(
  out: usize,
  q: usize,
  k: usize,
  v: usize,
  scratch: usize,
  group: i32,
  headDim: i32,
  nPos: i32,
  kvStride: i32,
): void {
  const norm = Mathf.sqrt(<f32> headDim);
  const row = <usize> headDim << 2;
  const step = <usize> kvStride << 2;
  for (let g = 0; g < group; g++) {
    const qg = q + <usize> g * row;
    const og = out + <usize> g * row;
    let kt = k;
    for (let t = 0; t < nPos; t++, kt += step) {
      store<f32>(scratch + (<usize> t << 2), dot(qg, kt, headDim) / norm);
    }
    softmax_f32(scratch, scratch, nPos, 1);
    memory.fill(og, 0, row);
    let vt = v;
    for (let t = 0; t < nPos; t++, vt += step) {
      const w = load<f32>(scratch + (<usize> t << 2));
      const vw = f32x4.splat(w);
      let i = 0;
      for (; i + 4 <= headDim; i += 4) {
        const p = <usize> i << 2;
        v128.store(
          og + p,
          f32x4.add(v128.load(og + p), f32x4.mul(vw, v128.load(vt + p))),
        );
      }
      for (; i < headDim; i++) {
        const p = <usize> i << 2;
        store<f32>(og + p, load<f32>(og + p) + w * load<f32>(vt + p));
      }
    }
  }
}
