/**
 * Plain-TS twins of assembly/train_ops.ts, one element at a time. They take
 * Float32Array or Float64Array (gradient checks run them in f64); integer
 * inputs (labels, indices) are Int32Array. Parameter-gradient outputs
 * accumulate (+=) exactly as the kernels do.
 */
import type { Floats } from "./train_matmul.ts";

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

export function layernorm_rows_f32(
  out: Floats,
  rstd: Floats,
  x: Floats,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < cols; i++) mean += x[r * cols + i];
    mean /= cols;
    let v = 0;
    for (let i = 0; i < cols; i++) v += (x[r * cols + i] - mean) ** 2;
    const rs = 1 / Math.sqrt(v / cols + eps);
    rstd[r] = rs;
    for (let i = 0; i < cols; i++) {
      out[r * cols + i] = (x[r * cols + i] - mean) * rs;
    }
  }
}

export function layernorm_rows_backward_f32(
  dx: Floats,
  dy: Floats,
  xhat: Floats,
  rstd: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    let m1 = 0, m2 = 0;
    for (let i = 0; i < cols; i++) {
      m1 += dy[r * cols + i];
      m2 += dy[r * cols + i] * xhat[r * cols + i];
    }
    m1 /= cols;
    m2 /= cols;
    for (let i = 0; i < cols; i++) {
      const j = r * cols + i;
      dx[j] = rstd[r] * (dy[j] - m1 - xhat[j] * m2);
    }
  }
}

export function modulate_f32(
  out: Floats,
  x: Floats,
  shift: Floats,
  scale: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      out[r * cols + i] = x[r * cols + i] * (1 + scale[i]) + shift[i];
    }
  }
}

export function modulate_backward_f32(
  dx: Floats,
  dshift: Floats,
  dscale: Floats,
  dy: Floats,
  x: Floats,
  scale: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      const g = dy[r * cols + i];
      dshift[i] += g;
      dscale[i] += g * x[r * cols + i];
      dx[r * cols + i] = g * (1 + scale[i]);
    }
  }
}

export function gate_add_f32(
  h: Floats,
  gate: Floats,
  y: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) h[r * cols + i] += gate[i] * y[r * cols + i];
  }
}

export function gate_add_backward_f32(
  dy: Floats,
  dgate: Floats,
  dh: Floats,
  y: Floats,
  gate: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      const g = dh[r * cols + i];
      dgate[i] += g * y[r * cols + i];
      dy[r * cols + i] = g * gate[i];
    }
  }
}

export function bias_add_f32(
  y: Floats,
  b: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) y[r * cols + i] += b[i];
  }
}

export function sum_rows_f32(
  out: Floats,
  x: Floats,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) out[i] += x[r * cols + i];
  }
}

/** GELU's tanh form from its definition (the kernel uses a vector exp). */
export function gelu_fast_f32(out: Floats, x: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    out[i] = 0.5 * v * (1 + Math.tanh(GELU_C * (v + GELU_A * v * v * v)));
  }
}

export function gelu_backward_f32(
  dx: Floats,
  x: Floats,
  dy: Floats,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const v = x[i];
    const t = Math.tanh(GELU_C * (v + GELU_A * v * v * v));
    const dt = (1 - t * t) * GELU_C * (1 + 3 * GELU_A * v * v);
    dx[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * dt);
  }
}

/** SiLU's definition, the forward that silu_backward_f32 differentiates. */
export function silu(out: Floats, x: Floats, n: number): void {
  for (let i = 0; i < n; i++) out[i] = x[i] / (1 + Math.exp(-x[i]));
}

export function silu_backward_f32(
  dx: Floats,
  x: Floats,
  dy: Floats,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const s = 1 / (1 + Math.exp(-x[i]));
    dx[i] = dy[i] * s * (1 + x[i] * (1 - s));
  }
}

export function embedding_f32(
  out: Floats,
  table: Floats,
  idx: Int32Array,
  n: number,
  cols: number,
): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < cols; j++) out[i * cols + j] = table[idx[i] * cols + j];
  }
}

export function embedding_backward_f32(
  dtable: Floats,
  idx: Int32Array,
  dy: Floats,
  n: number,
  cols: number,
): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < cols; j++) {
      dtable[idx[i] * cols + j] += dy[i * cols + j];
    }
  }
}

export function mse_loss_f32(
  grad: Floats,
  pred: Floats,
  target: Floats,
  n: number,
  gradScale: number,
): number {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const d = pred[i] - target[i];
    sum += d * d;
    grad[i] = gradScale * d;
  }
  return sum;
}

export function softmax_xent_f32(
  dlogits: Floats,
  logits: Floats,
  labels: Int32Array,
  rows: number,
  cols: number,
  gradScale: number,
): number {
  let loss = 0;
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let j = 0; j < cols; j++) max = Math.max(max, logits[r * cols + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(logits[r * cols + j] - max);
    const label = labels[r];
    loss += Math.log(sum) + max - logits[r * cols + label];
    for (let j = 0; j < cols; j++) {
      const p = Math.exp(logits[r * cols + j] - max) / sum;
      dlogits[r * cols + j] = (p - (j === label ? 1 : 0)) * gradScale;
    }
  }
  return loss;
}

export function sumsq_f32(x: Floats, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i] * x[i];
  return s;
}

export function adamw_f32(
  p: Floats,
  g: Floats,
  m: Floats,
  v: Floats,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  wd: number,
  bc1: number,
  bc2: number,
  gradScale: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i] * gradScale;
    m[i] = beta1 * m[i] + (1 - beta1) * gi;
    v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
    const mhat = m[i] / bc1, vhat = v[i] / bc2;
    p[i] = p[i] - lr * (mhat / (Math.sqrt(vhat) + eps) + wd * p[i]);
  }
}

export function ema_f32(avg: Floats, x: Floats, n: number, decay: number) {
  for (let i = 0; i < n; i++) avg[i] = decay * avg[i] + (1 - decay) * x[i];
}
