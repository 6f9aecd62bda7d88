// Softmax family over one f32 vector: softmax, log-softmax, argmax, top-k.
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/softmax.ts.
//
// The math follows llama2.c's run.c: subtract the maximum, expf, sum in
// order, divide by the sum. The exponentials use Mathf.exp (musl's expf,
// within one ULP of exp). A measured alternative, a Cephes-style SIMD
// polynomial (max 1 ULP on [-87, 0]), ran 32000 exps in 65 µs against
// 131 µs: the ≈ 65 µs it would save per token is ~2% of one 32000×768
// matvec, too little to trade run.c's exact expf for.

/** Largest value of x[0..n) (n ≥ 1); a NaN anywhere makes it NaN. */
function maxOf(x: usize, n: i32): f32 {
  let i = 0;
  let m: f32 = load<f32>(x);
  if (n >= 4) {
    // f32x4.max propagates NaN, so a NaN input poisons the result instead of
    // being skipped: a softmax over NaN logits must not look valid.
    let acc = v128.load(x);
    for (i = 4; i + 4 <= n; i += 4) {
      acc = f32x4.max(acc, v128.load(x + (<usize> i << 2)));
    }
    m = Mathf.max(
      Mathf.max(f32x4.extract_lane(acc, 0), f32x4.extract_lane(acc, 1)),
      Mathf.max(f32x4.extract_lane(acc, 2), f32x4.extract_lane(acc, 3)),
    );
  }
  for (; i < n; i++) m = Mathf.max(m, load<f32>(x + (<usize> i << 2)));
  return m;
}

/** out = softmax(x / temperature); out may equal x. */
export function softmax_f32(
  out: usize,
  x: usize,
  n: i32,
  temperature: f32,
): void {
  if (n <= 0) return;
  const max = maxOf(x, n);
  // Subtracting the maximum before dividing by the temperature keeps every
  // exponent ≤ 0, so a small temperature cannot overflow expf.
  let sum: f32 = 0;
  for (let i = 0; i < n; i++) {
    const p = <usize> i << 2;
    const e = Mathf.exp((load<f32>(x + p) - max) / temperature);
    store<f32>(out + p, e);
    sum += e;
  }
  // Divide (not multiply by 1/sum) as run.c does, to stay within one
  // rounding of it.
  const s = f32x4.splat(sum);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = out + (<usize> i << 2);
    v128.store(p, f32x4.div(v128.load(p), s));
  }
  for (; i < n; i++) {
    const p = out + (<usize> i << 2);
    store<f32>(p, load<f32>(p) / sum);
  }
}

/** out = log softmax(x / temperature); out may equal x. */
export function log_softmax_f32(
  out: usize,
  x: usize,
  n: i32,
  temperature: f32,
): void {
  if (n <= 0) return;
  const max = maxOf(x, n);
  let sum: f32 = 0;
  for (let i = 0; i < n; i++) {
    sum += Mathf.exp((load<f32>(x + (<usize> i << 2)) - max) / temperature);
  }
  // log Σ exp(y_i − y_max) ≥ 0 (the maximum contributes exp(0) = 1), so
  // out = y_i − y_max − log(sum) never overflows.
  const lse = Mathf.log(sum);
  const vm = f32x4.splat(max);
  const vt = f32x4.splat(temperature);
  const vl = f32x4.splat(lse);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = <usize> i << 2;
    const y = f32x4.div(f32x4.sub(v128.load(x + p), vm), vt);
    v128.store(out + p, f32x4.sub(y, vl));
  }
  for (; i < n; i++) {
    const p = <usize> i << 2;
    store<f32>(out + p, (load<f32>(x + p) - max) / temperature - lse);
  }
}

/**
 * Index of the largest value, the first one on ties; -1 when n = 0. NaNs
 * are passed over; when every value is NaN the answer is 0.
 */
export function argmax_f32(x: usize, n: i32): i32 {
  if (n <= 0) return -1;
  // Pass 1: the largest non-NaN value. pmax(a, b) = a < b ? b : a keeps the
  // accumulator when b is NaN, so NaNs never win.
  let m: f32 = -Infinity;
  let i = 0;
  if (n >= 4) {
    let acc = f32x4.splat(-Infinity);
    for (; i + 4 <= n; i += 4) {
      acc = f32x4.pmax(acc, v128.load(x + (<usize> i << 2)));
    }
    const a = f32x4.extract_lane(acc, 0), b = f32x4.extract_lane(acc, 1);
    const c = f32x4.extract_lane(acc, 2), d = f32x4.extract_lane(acc, 3);
    m = Mathf.max(Mathf.max(a, b), Mathf.max(c, d));
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize> i << 2));
    if (v > m) m = v;
  }
  // Pass 2: the first index holding it (the vector is in cache by now).
  const vm = f32x4.splat(m);
  i = 0;
  for (; i + 4 <= n; i += 4) {
    if (v128.any_true(f32x4.eq(v128.load(x + (<usize> i << 2)), vm))) break;
  }
  for (; i < n; i++) {
    if (load<f32>(x + (<usize> i << 2)) == m) return i;
  }
  return 0; // only NaNs
}

// --- top-k: a bounded min-heap kept in the output arrays ---

/**
 * True when entry a ranks below entry b: a smaller value, or the same value
 * at a higher index. NaN ranks below every number (among NaNs, the higher
 * index ranks lower), so NaNs are chosen only when numbers run out.
 */
// @ts-ignore: decorator
@inline
function below(va: f32, ia: i32, vb: f32, ib: i32): bool {
  if (va != va) return vb != vb ? ia > ib : true;
  if (vb != vb) return false;
  return va < vb || (va == vb && ia > ib);
}

// @ts-ignore: decorator
@inline
function swap(idx: usize, val: usize, a: i32, b: i32): void {
  const pa = <usize> a << 2, pb = <usize> b << 2;
  const ia = load<i32>(idx + pa), va = load<f32>(val + pa);
  store<i32>(idx + pa, load<i32>(idx + pb));
  store<f32>(val + pa, load<f32>(val + pb));
  store<i32>(idx + pb, ia);
  store<f32>(val + pb, va);
}

/** Restores the heap below position `at` (root = lowest rank). */
function siftDown(idx: usize, val: usize, size: i32, at: i32): void {
  while (true) {
    const l = 2 * at + 1;
    if (l >= size) return;
    let c = l;
    const r = l + 1;
    if (
      r < size &&
      below(
        load<f32>(val + (<usize> r << 2)),
        load<i32>(idx + (<usize> r << 2)),
        load<f32>(val + (<usize> l << 2)),
        load<i32>(idx + (<usize> l << 2)),
      )
    ) c = r;
    if (
      !below(
        load<f32>(val + (<usize> c << 2)),
        load<i32>(idx + (<usize> c << 2)),
        load<f32>(val + (<usize> at << 2)),
        load<i32>(idx + (<usize> at << 2)),
      )
    ) return;
    swap(idx, val, c, at);
    at = c;
  }
}

function siftUp(idx: usize, val: usize, at: i32): void {
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if (
      !below(
        load<f32>(val + (<usize> at << 2)),
        load<i32>(idx + (<usize> at << 2)),
        load<f32>(val + (<usize> parent << 2)),
        load<i32>(idx + (<usize> parent << 2)),
      )
    ) return;
    swap(idx, val, at, parent);
    at = parent;
  }
}

/**
 * The k largest values, highest first (ties: lower index first), written
 * as indices (i32) and values (f32); returns min(k, n).
 *
 * A min-heap of the best m = min(k, n) entries seen so far lives in the
 * output arrays; its root is the entry to beat. Once it is full, four
 * values at a time are compared with the root and skipped together, so for
 * k ≪ n most of the scan is one SIMD compare per four values. A final
 * heapsort orders the survivors: O(n + m log m) typical, O(n log m) worst.
 */
export function topk_f32(
  idx: usize,
  val: usize,
  x: usize,
  n: i32,
  k: i32,
): i32 {
  const m = k < n ? k : n;
  if (m <= 0) return 0;
  for (let i = 0; i < m; i++) {
    store<i32>(idx + (<usize> i << 2), i);
    store<f32>(val + (<usize> i << 2), load<f32>(x + (<usize> i << 2)));
    siftUp(idx, val, i);
  }
  let root = load<f32>(val);
  let i = m;
  while (i < n) {
    // Later indices lose ties, so only a strictly greater value can enter.
    // When the root is NaN every number beats it: no skipping then.
    if (root == root) {
      const t = f32x4.splat(root);
      while (
        i + 4 <= n &&
        !v128.any_true(f32x4.gt(v128.load(x + (<usize> i << 2)), t))
      ) i += 4;
    }
    const end = i + 4 < n ? i + 4 : n;
    for (; i < end; i++) {
      const v = load<f32>(x + (<usize> i << 2));
      if (below(root, load<i32>(idx), v, i)) {
        store<i32>(idx, i);
        store<f32>(val, v);
        siftDown(idx, val, m, 0);
        root = load<f32>(val);
      }
    }
  }
  // Heapsort: moving the lowest-ranked root to the end each time leaves the
  // arrays ordered from highest to lowest rank.
  for (let end = m - 1; end > 0; end--) {
    swap(idx, val, 0, end);
    siftDown(idx, val, end, 0);
  }
  return m;
}
