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
@inline
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
 * Four positions go at once: four dot products share each load of q (their
 * lane sums are transposed into one vector of scores), and four weighted
 * values are added to each load of out, in t order, so the result matches
 * the one-at-a-time form bit for bit and runs ≈ 1.5× faster (measured at
 * headDim 64, nPos 256-1024).
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
  const vnorm = f32x4.splat(norm);
  for (let g = 0; g < group; g++) {
    const qg = q + <usize> g * row;
    const og = out + <usize> g * row;
    let t = 0;
    let kt = k;
    for (; t + 4 <= nPos; t += 4, kt += 4 * step) {
      const k1 = kt + step, k2 = kt + 2 * step, k3 = kt + 3 * step;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
      let a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let i = 0;
      for (; i + 4 <= headDim; i += 4) {
        const p = <usize> i << 2;
        const qv = v128.load(qg + p);
        a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(kt + p)));
        a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + p)));
        a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + p)));
        a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + p)));
      }
      // Transpose-add: lane j of the result is the full sum of a_j.
      const s01 = f32x4.add(
        v128.shuffle<f32>(a0, a1, 0, 2, 4, 6),
        v128.shuffle<f32>(a0, a1, 1, 3, 5, 7),
      );
      const s23 = f32x4.add(
        v128.shuffle<f32>(a2, a3, 0, 2, 4, 6),
        v128.shuffle<f32>(a2, a3, 1, 3, 5, 7),
      );
      let sums = f32x4.add(
        v128.shuffle<f32>(s01, s23, 0, 2, 4, 6),
        v128.shuffle<f32>(s01, s23, 1, 3, 5, 7),
      );
      if (i < headDim) {
        let t0: f32 = 0, t1: f32 = 0, t2: f32 = 0, t3: f32 = 0;
        for (; i < headDim; i++) {
          const p = <usize> i << 2;
          const qi = load<f32>(qg + p);
          t0 += qi * load<f32>(kt + p);
          t1 += qi * load<f32>(k1 + p);
          t2 += qi * load<f32>(k2 + p);
          t3 += qi * load<f32>(k3 + p);
        }
        let tail = f32x4.splat(t0);
        tail = f32x4.replace_lane(tail, 1, t1);
        tail = f32x4.replace_lane(tail, 2, t2);
        tail = f32x4.replace_lane(tail, 3, t3);
        sums = f32x4.add(sums, tail);
      }
      v128.store(scratch + (<usize> t << 2), f32x4.div(sums, vnorm));
    }
    for (; t < nPos; t++, kt += step) {
      store<f32>(scratch + (<usize> t << 2), dot(qg, kt, headDim) / norm);
    }
    softmax_f32(scratch, scratch, nPos, 1);
    memory.fill(og, 0, row);
    t = 0;
    let vt = v;
    for (; t + 4 <= nPos; t += 4, vt += 4 * step) {
      const v1 = vt + step, v2 = vt + 2 * step, v3 = vt + 3 * step;
      const sp = scratch + (<usize> t << 2);
      const w0 = load<f32>(sp), w1 = load<f32>(sp, 4);
      const w2 = load<f32>(sp, 8), w3 = load<f32>(sp, 12);
      const x0 = f32x4.splat(w0), x1 = f32x4.splat(w1);
      const x2 = f32x4.splat(w2), x3 = f32x4.splat(w3);
      let i = 0;
      for (; i + 4 <= headDim; i += 4) {
        const p = <usize> i << 2;
        let o = v128.load(og + p);
        o = f32x4.add(o, f32x4.mul(x0, v128.load(vt + p)));
        o = f32x4.add(o, f32x4.mul(x1, v128.load(v1 + p)));
        o = f32x4.add(o, f32x4.mul(x2, v128.load(v2 + p)));
        o = f32x4.add(o, f32x4.mul(x3, v128.load(v3 + p)));
        v128.store(og + p, o);
      }
      for (; i < headDim; i++) {
        const p = <usize> i << 2;
        let o = load<f32>(og + p);
        o += w0 * load<f32>(vt + p);
        o += w1 * load<f32>(v1 + p);
        o += w2 * load<f32>(v2 + p);
        o += w3 * load<f32>(v3 + p);
        store<f32>(og + p, o);
      }
    }
    for (; t < nPos; t++, vt += step) {
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
