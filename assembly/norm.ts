// Normalisations over one f32 vector: RMSNorm (Llama) and LayerNorm.
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/norm.ts.

import { add_f32, mul_f32 } from "./activation";

/** Σ x[i]², four lanes at a time, then the tail. */
function sumSquares(x: usize, n: i32): f32 {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize> i << 2));
    acc = f32x4.add(acc, f32x4.mul(v, v));
  }
  let s: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize> i << 2));
    s += v * v;
  }
  return s;
}

/**
 * out = x / sqrt(mean(x²) + eps) · weight, with run.c's order of operations:
 * s = 1 / sqrtf(ss / n + eps), then out = weight · (s · x). out may equal x.
 */
export function rmsnorm_f32(
  out: usize,
  x: usize,
  weight: usize,
  n: i32,
  eps: f32,
): void {
  if (n <= 0) return;
  const s: f32 = <f32> 1 / Mathf.sqrt(sumSquares(x, n) / <f32> n + eps);
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    v128.store(
      out + p,
      f32x4.mul(v128.load(weight + p), f32x4.mul(vs, v128.load(x + p))),
    );
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, load<f32>(weight + p) * (s * load<f32>(x + p)));
  }
}

/**
 * out = (x − mean) / sqrt(var + eps) · weight + bias, where a weight or bias
 * pointer of 0 means none. The variance is taken around the mean in a
 * second pass (not as E[x²] − mean², which cancels badly when |mean| ≫ σ).
 * out may equal x.
 */
export function layernorm_f32(
  out: usize,
  x: usize,
  weight: usize,
  bias: usize,
  n: i32,
  eps: f32,
): void {
  if (n <= 0) return;
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    acc = f32x4.add(acc, v128.load(x + (<usize> i << 2)));
  }
  let sum: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) sum += load<f32>(x + (<usize> i << 2));
  const mean = sum / <f32> n;

  const vm = f32x4.splat(mean);
  acc = f32x4.splat(0);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const d = f32x4.sub(v128.load(x + (<usize> i << 2)), vm);
    acc = f32x4.add(acc, f32x4.mul(d, d));
  }
  let ss: f32 = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
    (f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3));
  for (; i < n; i++) {
    const d = load<f32>(x + (<usize> i << 2)) - mean;
    ss += d * d;
  }
  const s: f32 = <f32> 1 / Mathf.sqrt(ss / <f32> n + eps);

  // Normalise, then scale and shift in their own passes: the vector is in
  // cache, and one loop per combination of weight/bias would be four loops.
  const vs = f32x4.splat(s);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    v128.store(out + p, f32x4.mul(f32x4.sub(v128.load(x + p), vm), vs));
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, (load<f32>(x + p) - mean) * s);
  }
  if (weight != 0) mul_f32(out, out, weight, n);
  if (bias != 0) add_f32(out, out, bias, n);
}
