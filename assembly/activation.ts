// Elementwise activations and arithmetic over f32 vectors. Every kernel
// here allows out to equal an input (each element is read before it is
// written). Contract: src/kernels/exports.ts; plain-TS twin:
// src/kernels/ref/activation.ts.
//
// SiLU and GELU need one transcendental per element; Mathf.exp and
// Mathf.tanh are scalar, so those loops are scalar too (see softmax.ts for
// why no SIMD polynomial).

/** √(2/π), the GELU tanh approximation's inner scale. */
const SQRT_2_OVER_PI: f32 = 0.7978845608028654;
/** The cubic coefficient of the GELU tanh approximation. */
const GELU_A: f32 = 0.044715;

/** out = x · σ(x), written as run.c writes it: x · (1 / (1 + expf(−x))). */
export function silu_f32(out: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize> i << 2;
    const v = load<f32>(x + p);
    store<f32>(out + p, v * (<f32> 1 / (<f32> 1 + Mathf.exp(-v))));
  }
}

/** GELU, tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))). */
export function gelu_f32(out: usize, x: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize> i << 2;
    const v = load<f32>(x + p);
    const u = SQRT_2_OVER_PI * (v + GELU_A * v * v * v);
    store<f32>(out + p, <f32> 0.5 * v * (<f32> 1 + Mathf.tanh(u)));
  }
}

/** out = silu(gate) · up, run.c's SwiGLU. */
export function swiglu_f32(out: usize, gate: usize, up: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const p = <usize> i << 2;
    const g = load<f32>(gate + p);
    const s = g * (<f32> 1 / (<f32> 1 + Mathf.exp(-g)));
    store<f32>(out + p, s * load<f32>(up + p));
  }
}

export function add_f32(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    v128.store(out + p, f32x4.add(v128.load(a + p), v128.load(b + p)));
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, load<f32>(a + p) + load<f32>(b + p));
  }
}

export function mul_f32(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    v128.store(out + p, f32x4.mul(v128.load(a + p), v128.load(b + p)));
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, load<f32>(a + p) * load<f32>(b + p));
  }
}

/** out = a · s */
export function scale_f32(out: usize, a: usize, s: f32, n: i32): void {
  const vs = f32x4.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    v128.store(out + p, f32x4.mul(v128.load(a + p), vs));
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, load<f32>(a + p) * s);
  }
}
