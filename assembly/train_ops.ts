// Training kernels besides GEMM: row-wise LayerNorm and the adaptive
// LayerNorm pieces of a DiT block (modulate, gated residual), activations,
// biases, embeddings and the losses, each with its backward, plus AdamW, EMA
// and the squared norm used for gradient clipping.
//
// Matrices are row-major `rows × cols`. A kernel whose name ends in
// `_backward_` writes the gradient of its inputs given `dy`, the gradient of
// its output; outputs named `d…` that are parameter gradients ACCUMULATE
// (+=), since one parameter feeds many rows; activation gradients overwrite.

import { expf4, tanhf4 } from "./train_math";

const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / π)
const GELU_A: f32 = 0.044715;

/**
 * LayerNorm without affine, per row: out = (x − mean) · rstd with
 * rstd = 1 / sqrt(var + eps). Saves rstd per row for the backward.
 */
export function layernorm_rows_f32(
  out: usize,
  rstd: usize,
  x: usize,
  rows: i32,
  cols: i32,
  eps: f32,
): void {
  const n4 = cols & ~3;
  const inv = <f32>1 / <f32>cols;
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * cols) << 2);
    const po = out + ((<usize>r * cols) << 2);
    let acc = f32x4.splat(0);
    let i = 0;
    for (; i < n4; i += 4) acc = f32x4.add(acc, v128.load(px + (<usize>i << 2)));
    let sum = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
      f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; i < cols; i++) sum += load<f32>(px + (<usize>i << 2));
    const mean = sum * inv;
    // Two passes (mean, then squared deviations) avoid the cancellation of
    // E[x²] − E[x]² when the mean is large next to the spread.
    const mv = f32x4.splat(mean);
    acc = f32x4.splat(0);
    for (i = 0; i < n4; i += 4) {
      const d = f32x4.sub(v128.load(px + (<usize>i << 2)), mv);
      acc = f32x4.add(acc, f32x4.mul(d, d));
    }
    let ss = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) +
      f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
    for (; i < cols; i++) {
      const d = load<f32>(px + (<usize>i << 2)) - mean;
      ss += d * d;
    }
    const rs = <f32>1 / Mathf.sqrt(ss * inv + eps);
    store<f32>(rstd + (<usize>r << 2), rs);
    const rv = f32x4.splat(rs);
    for (i = 0; i < n4; i += 4) {
      v128.store(
        po + (<usize>i << 2),
        f32x4.mul(f32x4.sub(v128.load(px + (<usize>i << 2)), mv), rv),
      );
    }
    for (; i < cols; i++) {
      store<f32>(po + (<usize>i << 2), (load<f32>(px + (<usize>i << 2)) - mean) * rs);
    }
  }
}

/**
 * Backward of layernorm_rows_f32 given its output xhat and rstd:
 * dx = rstd · (dy − mean(dy) − xhat · mean(dy · xhat)). dx may equal dy.
 */
export function layernorm_rows_backward_f32(
  dx: usize,
  dy: usize,
  xhat: usize,
  rstd: usize,
  rows: i32,
  cols: i32,
): void {
  const n4 = cols & ~3;
  const inv = <f32>1 / <f32>cols;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    const pdy = dy + off, ph = xhat + off, pdx = dx + off;
    let a1 = f32x4.splat(0), a2 = f32x4.splat(0);
    let i = 0;
    for (; i < n4; i += 4) {
      const g = v128.load(pdy + (<usize>i << 2));
      a1 = f32x4.add(a1, g);
      a2 = f32x4.add(a2, f32x4.mul(g, v128.load(ph + (<usize>i << 2))));
    }
    let s1 = f32x4.extract_lane(a1, 0) + f32x4.extract_lane(a1, 1) +
      f32x4.extract_lane(a1, 2) + f32x4.extract_lane(a1, 3);
    let s2 = f32x4.extract_lane(a2, 0) + f32x4.extract_lane(a2, 1) +
      f32x4.extract_lane(a2, 2) + f32x4.extract_lane(a2, 3);
    for (; i < cols; i++) {
      const g = load<f32>(pdy + (<usize>i << 2));
      s1 += g;
      s2 += g * load<f32>(ph + (<usize>i << 2));
    }
    const m1 = s1 * inv, m2 = s2 * inv;
    const rs = load<f32>(rstd + (<usize>r << 2));
    const m1v = f32x4.splat(m1), m2v = f32x4.splat(m2), rv = f32x4.splat(rs);
    for (i = 0; i < n4; i += 4) {
      const g = v128.load(pdy + (<usize>i << 2));
      const h = v128.load(ph + (<usize>i << 2));
      v128.store(
        pdx + (<usize>i << 2),
        f32x4.mul(rv, f32x4.sub(f32x4.sub(g, m1v), f32x4.mul(h, m2v))),
      );
    }
    for (; i < cols; i++) {
      const g = load<f32>(pdy + (<usize>i << 2));
      const h = load<f32>(ph + (<usize>i << 2));
      store<f32>(pdx + (<usize>i << 2), rs * (g - m1 - h * m2));
    }
  }
}

/** out[r] = x[r] · (1 + scale) + shift for every row (adaLN modulation). */
export function modulate_f32(
  out: usize,
  x: usize,
  shift: usize,
  scale: usize,
  rows: i32,
  cols: i32,
): void {
  const n4 = cols & ~3;
  const one = f32x4.splat(1);
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(
        out + off + o,
        f32x4.add(
          f32x4.mul(v128.load(x + off + o), f32x4.add(one, v128.load(scale + o))),
          v128.load(shift + o),
        ),
      );
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      store<f32>(
        out + off + o,
        load<f32>(x + off + o) * (1 + load<f32>(scale + o)) + load<f32>(shift + o),
      );
    }
  }
}

/**
 * Backward of modulate_f32: dx = dy · (1 + scale) (dx may equal dy);
 * dshift += Σ_r dy[r], dscale += Σ_r dy[r] · x[r].
 */
export function modulate_backward_f32(
  dx: usize,
  dshift: usize,
  dscale: usize,
  dy: usize,
  x: usize,
  scale: usize,
  rows: i32,
  cols: i32,
): void {
  const n4 = cols & ~3;
  const one = f32x4.splat(1);
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      const g = v128.load(dy + off + o);
      v128.store(dshift + o, f32x4.add(v128.load(dshift + o), g));
      v128.store(
        dscale + o,
        f32x4.add(v128.load(dscale + o), f32x4.mul(g, v128.load(x + off + o))),
      );
      v128.store(dx + off + o, f32x4.mul(g, f32x4.add(one, v128.load(scale + o))));
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      const g = load<f32>(dy + off + o);
      store<f32>(dshift + o, load<f32>(dshift + o) + g);
      store<f32>(dscale + o, load<f32>(dscale + o) + g * load<f32>(x + off + o));
      store<f32>(dx + off + o, g * (1 + load<f32>(scale + o)));
    }
  }
}

/** h[r] += gate ⊙ y[r] for every row (the gated residual of adaLN-Zero). */
export function gate_add_f32(
  h: usize,
  gate: usize,
  y: usize,
  rows: i32,
  cols: i32,
): void {
  const n4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(
        h + off + o,
        f32x4.add(
          v128.load(h + off + o),
          f32x4.mul(v128.load(gate + o), v128.load(y + off + o)),
        ),
      );
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      store<f32>(
        h + off + o,
        load<f32>(h + off + o) + load<f32>(gate + o) * load<f32>(y + off + o),
      );
    }
  }
}

/**
 * Backward of gate_add_f32 for y and gate (h's own gradient passes through
 * unchanged): dy = gate ⊙ dh; dgate += Σ_r dh[r] ⊙ y[r].
 */
export function gate_add_backward_f32(
  dy: usize,
  dgate: usize,
  dh: usize,
  y: usize,
  gate: usize,
  rows: i32,
  cols: i32,
): void {
  const n4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      const g = v128.load(dh + off + o);
      v128.store(
        dgate + o,
        f32x4.add(v128.load(dgate + o), f32x4.mul(g, v128.load(y + off + o))),
      );
      v128.store(dy + off + o, f32x4.mul(g, v128.load(gate + o)));
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      const g = load<f32>(dh + off + o);
      store<f32>(dgate + o, load<f32>(dgate + o) + g * load<f32>(y + off + o));
      store<f32>(dy + off + o, g * load<f32>(gate + o));
    }
  }
}

/** y[r] += b for every row. */
export function bias_add_f32(y: usize, b: usize, rows: i32, cols: i32): void {
  const n4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(y + off + o, f32x4.add(v128.load(y + off + o), v128.load(b + o)));
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      store<f32>(y + off + o, load<f32>(y + off + o) + load<f32>(b + o));
    }
  }
}

/** out += Σ_r x[r]: a bias gradient, or a positional embedding's over a batch. */
export function sum_rows_f32(out: usize, x: usize, rows: i32, cols: i32): void {
  const n4 = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const off = (<usize>r * cols) << 2;
    let i = 0;
    for (; i < n4; i += 4) {
      const o = <usize>i << 2;
      v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(x + off + o)));
    }
    for (; i < cols; i++) {
      const o = <usize>i << 2;
      store<f32>(out + o, load<f32>(out + o) + load<f32>(x + off + o));
    }
  }
}

/**
 * GELU, tanh approximation: ½x(1 + tanh(√(2/π)(x + 0.044715x³))), the
 * formula of gelu_f32, with the vector exp: the MLP of every DiT block runs
 * it over tokens × hidden values per step, where a scalar tanh per element
 * would cost more than the matrix products. out may equal x.
 */
export function gelu_fast_f32(out: usize, x: usize, n: i32): void {
  const c = f32x4.splat(GELU_C), a = f32x4.splat(GELU_A), half = f32x4.splat(0.5);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const u = f32x4.mul(c, f32x4.add(v, f32x4.mul(a, f32x4.mul(v, f32x4.mul(v, v)))));
    const t = tanhf4(u);
    v128.store(out + o, f32x4.mul(f32x4.mul(half, v), f32x4.add(f32x4.splat(1), t)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const t = Mathf.tanh(GELU_C * (v + GELU_A * v * v * v));
    store<f32>(out + o, <f32>0.5 * v * (<f32>1 + t));
  }
}

/** dx = dy · gelu'(x) for the tanh approximation; dx may equal dy. */
export function gelu_backward_f32(dx: usize, x: usize, dy: usize, n: i32): void {
  const c = f32x4.splat(GELU_C), a = f32x4.splat(GELU_A), half = f32x4.splat(0.5);
  const one = f32x4.splat(1), a3 = f32x4.splat(3 * GELU_A);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const v2 = f32x4.mul(v, v);
    const t = tanhf4(f32x4.mul(c, f32x4.add(v, f32x4.mul(a, f32x4.mul(v, v2)))));
    const dt = f32x4.mul(
      f32x4.mul(f32x4.sub(one, f32x4.mul(t, t)), c),
      f32x4.add(one, f32x4.mul(a3, v2)),
    );
    const g = f32x4.add(f32x4.mul(half, f32x4.add(one, t)), f32x4.mul(f32x4.mul(half, v), dt));
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), g));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const t = Mathf.tanh(GELU_C * (v + GELU_A * v * v * v));
    const dt = (<f32>1 - t * t) * GELU_C * (<f32>1 + <f32>3 * GELU_A * v * v);
    store<f32>(dx + o, load<f32>(dy + o) * (<f32>0.5 * (<f32>1 + t) + <f32>0.5 * v * dt));
  }
}

/** dx = dy · silu'(x) = dy · σ(x) · (1 + x · (1 − σ(x))) for silu_f32; dx may equal dy. */
export function silu_backward_f32(dx: usize, x: usize, dy: usize, n: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const s = f32x4.div(one, f32x4.add(one, expf4(f32x4.neg(v))));
    const g = f32x4.mul(s, f32x4.add(one, f32x4.mul(v, f32x4.sub(one, s))));
    v128.store(dx + o, f32x4.mul(v128.load(dy + o), g));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const v = load<f32>(x + o);
    const s = <f32>1 / (1 + Mathf.exp(-v));
    store<f32>(dx + o, load<f32>(dy + o) * s * (1 + v * (1 - s)));
  }
}

/** out[i] = table[idx[i]] (idx: i32), rows of cols floats. */
export function embedding_f32(
  out: usize,
  table: usize,
  idx: usize,
  n: i32,
  cols: i32,
): void {
  const bytes = <usize>cols << 2;
  for (let i = 0; i < n; i++) {
    const row = <usize>load<i32>(idx + (<usize>i << 2));
    memory.copy(out + <usize>i * bytes, table + row * bytes, bytes);
  }
}

/** dtable[idx[i]] += dy[i]: the scatter-add backward of embedding_f32. */
export function embedding_backward_f32(
  dtable: usize,
  idx: usize,
  dy: usize,
  n: i32,
  cols: i32,
): void {
  for (let i = 0; i < n; i++) {
    const row = <usize>load<i32>(idx + (<usize>i << 2));
    const pt = dtable + ((row * cols) << 2);
    const pg = dy + ((<usize>i * cols) << 2);
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const o = <usize>j << 2;
      v128.store(pt + o, f32x4.add(v128.load(pt + o), v128.load(pg + o)));
    }
    for (; j < cols; j++) {
      const o = <usize>j << 2;
      store<f32>(pt + o, load<f32>(pt + o) + load<f32>(pg + o));
    }
  }
}

/**
 * Squared error: returns Σ (pred − target)² and writes
 * grad = gradScale · (pred − target) (gradScale = 2 / n for the mean).
 */
export function mse_loss_f32(
  grad: usize,
  pred: usize,
  target: usize,
  n: i32,
  gradScale: f32,
): f64 {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const d = load<f32>(pred + o) - load<f32>(target + o);
    sum += <f64>d * <f64>d;
    store<f32>(grad + o, gradScale * d);
  }
  return sum;
}

/**
 * Softmax cross-entropy over rows of logits with i32 labels: returns the
 * summed loss −Σ log p[label] and writes dlogits = (p − onehot) · gradScale.
 */
export function softmax_xent_f32(
  dlogits: usize,
  logits: usize,
  labels: usize,
  rows: i32,
  cols: i32,
  gradScale: f32,
): f64 {
  let loss: f64 = 0;
  for (let r = 0; r < rows; r++) {
    const pl = logits + ((<usize>r * cols) << 2);
    const pd = dlogits + ((<usize>r * cols) << 2);
    let mx = load<f32>(pl);
    for (let j = 1; j < cols; j++) mx = max(mx, load<f32>(pl + (<usize>j << 2)));
    let sum: f32 = 0;
    for (let j = 0; j < cols; j++) {
      const e = Mathf.exp(load<f32>(pl + (<usize>j << 2)) - mx);
      store<f32>(pd + (<usize>j << 2), e);
      sum += e;
    }
    const label = load<i32>(labels + (<usize>r << 2));
    const inv = <f32>1 / sum;
    loss += <f64>(Mathf.log(sum) + mx - load<f32>(pl + (<usize>label << 2)));
    for (let j = 0; j < cols; j++) {
      const p = load<f32>(pd + (<usize>j << 2)) * inv;
      store<f32>(pd + (<usize>j << 2), (p - (j == label ? <f32>1 : <f32>0)) * gradScale);
    }
  }
  return loss;
}

/** Σ x², in f64 so that millions of squares do not lose the small ones. */
export function sumsq_f32(x: usize, n: i32): f64 {
  let acc = f32x4.splat(0);
  let total: f64 = 0;
  let i = 0;
  // Flush the f32 lanes to f64 every 1024 values to bound rounding.
  while (i + 4 <= n) {
    const end = min(i + 1024, n & ~3);
    for (; i < end; i += 4) {
      const v = v128.load(x + (<usize>i << 2));
      acc = f32x4.add(acc, f32x4.mul(v, v));
    }
    total += <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) +
      <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3);
    acc = f32x4.splat(0);
  }
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    total += v * v;
  }
  return total;
}

/**
 * One AdamW step (decoupled weight decay, Loshchilov & Hutter) on n
 * parameters. The gradient is first multiplied by gradScale (clipping);
 * bc1 = 1 − β1^t and bc2 = 1 − β2^t are the bias corrections.
 *   m = β1 m + (1 − β1) g;  v = β2 v + (1 − β2) g²
 *   p −= lr · (m / bc1 / (sqrt(v / bc2) + eps) + wd · p)
 */
export function adamw_f32(
  p: usize,
  g: usize,
  m: usize,
  v: usize,
  n: i32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  wd: f32,
  bc1: f32,
  bc2: f32,
  gradScale: f32,
): void {
  const ib1 = <f32>1 / bc1, ib2 = <f32>1 / bc2;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o) * gradScale;
    const mi = beta1 * load<f32>(m + o) + (1 - beta1) * gi;
    const vi = beta2 * load<f32>(v + o) + (1 - beta2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o);
    store<f32>(p + o, pi - lr * (mi * ib1 / (Mathf.sqrt(vi * ib2) + eps) + wd * pi));
  }
}

/** avg = decay · avg + (1 − decay) · x: the exponential moving average of weights. */
export function ema_f32(avg: usize, x: usize, n: i32, decay: f32): void {
  const d = f32x4.splat(decay), e = f32x4.splat(1 - decay);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(
      avg + o,
      f32x4.add(f32x4.mul(d, v128.load(avg + o)), f32x4.mul(e, v128.load(x + o))),
    );
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(avg + o, decay * load<f32>(avg + o) + (1 - decay) * load<f32>(x + o));
  }
}
