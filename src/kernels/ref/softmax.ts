/**
 * Plain-TS twins of assembly/softmax.ts: the same math written the obvious
 * way, one element at a time, rounding to f32 where the kernel does. Tests
 * compare the kernels against these.
 */
const f32 = Math.fround;

/** out = softmax(x / temperature), as run.c: max-subtracted, summed in order. */
export function softmax_f32(
  out: Float32Array,
  x: Float32Array,
  n: number,
  temperature: number,
): void {
  if (n <= 0) return;
  let max = x[0];
  for (let i = 1; i < n; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = f32(Math.exp(f32(f32(x[i] - max) / temperature)));
    out[i] = e;
    sum = f32(sum + e);
  }
  for (let i = 0; i < n; i++) out[i] = f32(out[i] / sum);
}

/** out = log softmax(x / temperature). */
export function log_softmax_f32(
  out: Float32Array,
  x: Float32Array,
  n: number,
  temperature: number,
): void {
  if (n <= 0) return;
  let max = x[0];
  for (let i = 1; i < n; i++) max = Math.max(max, x[i]);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum = f32(sum + f32(Math.exp(f32(f32(x[i] - max) / temperature))));
  }
  const lse = f32(Math.log(sum));
  for (let i = 0; i < n; i++) {
    out[i] = f32(f32(f32(x[i] - max) / temperature) - lse);
  }
}

/** First index of the largest non-NaN value; 0 if all are NaN, -1 if n = 0. */
export function argmax_f32(x: Float32Array, n: number): number {
  if (n <= 0) return -1;
  let best = -1;
  for (let i = 0; i < n; i++) {
    if (best < 0 ? x[i] === x[i] : x[i] > x[best]) best = i;
  }
  return best < 0 ? 0 : best;
}

/**
 * The k largest values by a full sort (the kernel selects instead):
 * highest first, ties by lower index, NaN below every number.
 */
export function topk_f32(
  idx: Int32Array,
  val: Float32Array,
  x: Float32Array,
  n: number,
  k: number,
): number {
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => {
    const va = x[a], vb = x[b];
    const na = Number.isNaN(va), nb = Number.isNaN(vb);
    if (na !== nb) return na ? 1 : -1;
    if (!na && va !== vb) return vb - va;
    return a - b;
  });
  const m = Math.max(0, Math.min(k, n));
  for (let i = 0; i < m; i++) {
    idx[i] = order[i];
    val[i] = x[order[i]];
  }
  return m;
}
