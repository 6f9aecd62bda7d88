/**
 * Plain-TS twins of assembly/norm.ts: sums in order, one rounding to f32
 * per operation, as a C loop over floats would do.
 */
const f32 = Math.fround;

/** out = weight · (x / sqrt(mean(x²) + eps)), run.c's rmsnorm. */
export function rmsnorm_f32(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array,
  n: number,
  eps: number,
): void {
  if (n <= 0) return;
  let ss = 0;
  for (let i = 0; i < n; i++) ss = f32(ss + f32(x[i] * x[i]));
  const s = f32(1 / f32(Math.sqrt(f32(f32(ss / n) + eps))));
  for (let i = 0; i < n; i++) out[i] = f32(weight[i] * f32(s * x[i]));
}

/** out = (x − mean) / sqrt(var + eps) · weight + bias; null = none. */
export function layernorm_f32(
  out: Float32Array,
  x: Float32Array,
  weight: Float32Array | null,
  bias: Float32Array | null,
  n: number,
  eps: number,
): void {
  if (n <= 0) return;
  let sum = 0;
  for (let i = 0; i < n; i++) sum = f32(sum + x[i]);
  const mean = f32(sum / n);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = f32(x[i] - mean);
    ss = f32(ss + f32(d * d));
  }
  const s = f32(1 / f32(Math.sqrt(f32(f32(ss / n) + eps))));
  for (let i = 0; i < n; i++) {
    let y = f32(f32(x[i] - mean) * s);
    if (weight) y = f32(y * weight[i]);
    if (bias) y = f32(y + bias[i]);
    out[i] = y;
  }
}
