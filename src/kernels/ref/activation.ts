/**
 * Plain-TS twins of assembly/activation.ts, one element at a time with
 * every operation rounded to f32.
 */
const f32 = Math.fround;

function sigmoidTimes(v: number): number {
  return f32(v * f32(1 / f32(1 + f32(Math.exp(-v)))));
}

export function silu_f32(out: Float32Array, x: Float32Array, n: number) {
  for (let i = 0; i < n; i++) out[i] = sigmoidTimes(x[i]);
}

/** GELU, tanh approximation. */
export function gelu_f32(out: Float32Array, x: Float32Array, n: number) {
  const c = f32(Math.sqrt(2 / Math.PI));
  const a = f32(0.044715);
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const cube = f32(f32(f32(a * v) * v) * v);
    const t = f32(Math.tanh(f32(c * f32(v + cube))));
    out[i] = f32(f32(0.5 * v) * f32(1 + t));
  }
}

export function swiglu_f32(
  out: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  n: number,
) {
  for (let i = 0; i < n; i++) out[i] = f32(sigmoidTimes(gate[i]) * up[i]);
}

export function add_f32(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  n: number,
) {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
}

export function mul_f32(
  out: Float32Array,
  a: Float32Array,
  b: Float32Array,
  n: number,
) {
  for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
}

export function scale_f32(
  out: Float32Array,
  a: Float32Array,
  s: number,
  n: number,
) {
  const s32 = f32(s); // the kernel receives s as an f32 argument
  for (let i = 0; i < n; i++) out[i] = a[i] * s32;
}
