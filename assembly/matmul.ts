// f32 matrix-vector products: y = W x for one vector (matvec_f32) and for a
// skinny batch of m = 1..16 vectors that reads W once (matmul_f32).
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/matmul.ts.
//
// Shape, from measurements on the target machine (bench/kernels.ts):
// - The loop is bound by its loads (128-bit WASM SIMD has no fused
//   multiply-add, and the engine issues little more than one load per
//   cycle here), so each loaded vector should feed several products: four
//   rows share every load of x, and for a batch each W load feeds two
//   vectors (4 rows × 2 vectors = 8 live accumulators, all the registers
//   the engine keeps without spilling).
// - The four rows come from the four quarters of W (r, r + q, r + 2q,
//   r + 3q), not from neighbouring rows. Reading neighbouring rows side by
//   side cut main-memory bandwidth to a third (the prefetcher loses track of
//   interleaved streams a few KB apart); streams a quarter of W apart read
//   as fast as one.
// - A quad of rows (12 KB at 768 columns) stays in L1 while every vector of
//   the batch passes over it, so W is read from memory once per call.
// - Every output is summed in one order, whatever kernel computes it: one
//   f32x4 accumulator over 4-float chunks front to back, its lanes added as
//   (0 + 2) + (1 + 3), then the last cols % 4 products in order. So a row's
//   result does not depend on which other rows or vectors share the call,
//   and splitting the rows between threads gives the same bits.

// @ts-ignore: decorator
@inline
function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** The lanes summed as (0 + 2) + (1 + 3). */
// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** hsum(acc) plus the products of the last cols % 4 columns, in order. */
// @ts-ignore: decorator
@inline
function finish(acc: v128, w: usize, x: usize, cols: i32): f32 {
  let s = hsum(acc);
  for (let c = cols & ~3; c < cols; c++) {
    const o = <usize>c << 2;
    s += load<f32>(w + o) * load<f32>(x + o);
  }
  return s;
}

/** One row against one vector (the rows that do not fill a quad). */
function dot(w: usize, x: usize, cols: i32): f32 {
  let acc = f32x4.splat(0);
  const n4 = <usize>(cols & ~3) << 2;
  for (let o: usize = 0; o < n4; o += 16) {
    acc = madd(acc, v128.load(w + o), v128.load(x + o));
  }
  return finish(acc, w, x, cols);
}

/**
 * Rows w0, w0 + seg, w0 + 2·seg, w0 + 3·seg against one vector; results at
 * y, y + yq, y + 2·yq, y + 3·yq.
 */
// @ts-ignore: decorator
@inline
function quad1(
  y: usize,
  yq: usize,
  w0: usize,
  seg: usize,
  x: usize,
  cols: i32,
): void {
  const w1 = w0 + seg;
  const w2 = w1 + seg;
  const w3 = w2 + seg;
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const n8 = <usize>(cols & ~7) << 2;
  let o: usize = 0;
  for (; o < n8; o += 32) {
    let v = v128.load(x + o);
    a0 = madd(a0, v128.load(w0 + o), v);
    a1 = madd(a1, v128.load(w1 + o), v);
    a2 = madd(a2, v128.load(w2 + o), v);
    a3 = madd(a3, v128.load(w3 + o), v);
    v = v128.load(x + o, 16);
    a0 = madd(a0, v128.load(w0 + o, 16), v);
    a1 = madd(a1, v128.load(w1 + o, 16), v);
    a2 = madd(a2, v128.load(w2 + o, 16), v);
    a3 = madd(a3, v128.load(w3 + o, 16), v);
  }
  if (cols & 4) {
    const v = v128.load(x + o);
    a0 = madd(a0, v128.load(w0 + o), v);
    a1 = madd(a1, v128.load(w1 + o), v);
    a2 = madd(a2, v128.load(w2 + o), v);
    a3 = madd(a3, v128.load(w3 + o), v);
  }
  store<f32>(y, finish(a0, w0, x, cols));
  store<f32>(y + yq, finish(a1, w1, x, cols));
  store<f32>(y + 2 * yq, finish(a2, w2, x, cols));
  store<f32>(y + 3 * yq, finish(a3, w3, x, cols));
}

/**
 * The same four rows against two vectors (x and x + xs): one accumulator
 * per row and vector, eight in all. Vector 1's results are ys after vector 0's.
 */
// @ts-ignore: decorator
@inline
function quad2(
  y: usize,
  ys: usize,
  yq: usize,
  w0: usize,
  seg: usize,
  x: usize,
  xs: usize,
  cols: i32,
): void {
  const w1 = w0 + seg;
  const w2 = w1 + seg;
  const w3 = w2 + seg;
  const z = x + xs;
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  const n8 = <usize>(cols & ~7) << 2;
  let o: usize = 0;
  for (; o < n8; o += 32) {
    let v = v128.load(x + o);
    let u = v128.load(z + o);
    let r = v128.load(w0 + o);
    a0 = madd(a0, r, v);
    b0 = madd(b0, r, u);
    r = v128.load(w1 + o);
    a1 = madd(a1, r, v);
    b1 = madd(b1, r, u);
    r = v128.load(w2 + o);
    a2 = madd(a2, r, v);
    b2 = madd(b2, r, u);
    r = v128.load(w3 + o);
    a3 = madd(a3, r, v);
    b3 = madd(b3, r, u);
    v = v128.load(x + o, 16);
    u = v128.load(z + o, 16);
    r = v128.load(w0 + o, 16);
    a0 = madd(a0, r, v);
    b0 = madd(b0, r, u);
    r = v128.load(w1 + o, 16);
    a1 = madd(a1, r, v);
    b1 = madd(b1, r, u);
    r = v128.load(w2 + o, 16);
    a2 = madd(a2, r, v);
    b2 = madd(b2, r, u);
    r = v128.load(w3 + o, 16);
    a3 = madd(a3, r, v);
    b3 = madd(b3, r, u);
  }
  if (cols & 4) {
    const v = v128.load(x + o);
    const u = v128.load(z + o);
    let r = v128.load(w0 + o);
    a0 = madd(a0, r, v);
    b0 = madd(b0, r, u);
    r = v128.load(w1 + o);
    a1 = madd(a1, r, v);
    b1 = madd(b1, r, u);
    r = v128.load(w2 + o);
    a2 = madd(a2, r, v);
    b2 = madd(b2, r, u);
    r = v128.load(w3 + o);
    a3 = madd(a3, r, v);
    b3 = madd(b3, r, u);
  }
  store<f32>(y, finish(a0, w0, x, cols));
  store<f32>(y + yq, finish(a1, w1, x, cols));
  store<f32>(y + 2 * yq, finish(a2, w2, x, cols));
  store<f32>(y + 3 * yq, finish(a3, w3, x, cols));
  y += ys;
  store<f32>(y, finish(b0, w0, z, cols));
  store<f32>(y + yq, finish(b1, w1, z, cols));
  store<f32>(y + 2 * yq, finish(b2, w2, z, cols));
  store<f32>(y + 3 * yq, finish(b3, w3, z, cols));
}

/** y[r] = Σ_c W[r, c] · x[c] for r < rows. */
export function matvec_f32(
  y: usize,
  w: usize,
  x: usize,
  rows: i32,
  cols: i32,
): void {
  matmul_f32(y, w, x, rows, cols, 1, rows);
}

/**
 * y[j · ldy + r] = Σ_c W[r, c] · x[j · cols + c] for j < m, r < rows.
 * Rows go in quads, one from each quarter of W; every vector passes over a
 * quad while it is in L1. The rows % 4 left over go one at a time.
 */
export function matmul_f32(
  y: usize,
  w: usize,
  x: usize,
  rows: i32,
  cols: i32,
  m: i32,
  ldy: i32,
): void {
  const rowBytes = <usize>cols << 2;
  const ys = <usize>ldy << 2;
  const q = rows >> 2;
  const seg = <usize>q * rowBytes;
  const yq = <usize>q << 2;
  for (let r = 0; r < q; r++) {
    const w0 = w + <usize>r * rowBytes;
    const y0 = y + (<usize>r << 2);
    let j = 0;
    for (; j + 2 <= m; j += 2) {
      quad2(y0 + <usize>j * ys, ys, yq, w0, seg, x + <usize>j * rowBytes, rowBytes, cols);
    }
    if (j < m) quad1(y0 + <usize>j * ys, yq, w0, seg, x + <usize>j * rowBytes, cols);
  }
  for (let r = q << 2; r < rows; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let j = 0; j < m; j++) {
      store<f32>(
        y + (<usize>r << 2) + <usize>j * ys,
        dot(wr, x + <usize>j * rowBytes, cols),
      );
    }
  }
}
