// f32 matrix-vector products: y = W x for one vector (matvec_f32) and for a
// skinny batch of m = 1..16 vectors that reads W once (matmul_f32).
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/matmul.ts.
//
// Shape, from measurements on the target machine (bench/kernels.ts):
// - W is read one row at a time, front to back. Reading two rows side by
//   side (two interleaved streams) halved the bandwidth from main memory
//   (29 → 11-16 GB/s for a plain sum), so every kernel here walks W as one
//   sequential stream and keeps each row in L1 while it is used.
// - 128-bit WASM SIMD has no fused multiply-add: each step is a mul and an
//   add, and with one row the loop is bound by its two loads per step. Four
//   independent accumulators over 16 floats per iteration hide the add
//   latency; more did not help.
// - For a batch, one row meets several vectors per loaded W vector, so a
//   step costs 1 + G loads for G products instead of 2G. Groups of 8, 4, 2
//   and 1 vectors keep at most 8 live accumulators (the engine keeps them in
//   registers; more spills).

// @ts-ignore: decorator
@inline
function madd(acc: v128, a: v128, b: v128): v128 {
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Σ w[c] · x[c] over `cols` floats. */
// @ts-ignore: decorator
@inline
function dot1(w: usize, x: usize, cols: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  const end16 = w + (<usize> (cols & ~15) << 2);
  while (w < end16) {
    a0 = madd(a0, v128.load(w), v128.load(x));
    a1 = madd(a1, v128.load(w, 16), v128.load(x, 16));
    a2 = madd(a2, v128.load(w, 32), v128.load(x, 32));
    a3 = madd(a3, v128.load(w, 48), v128.load(x, 48));
    w += 64;
    x += 64;
  }
  const end4 = end16 + (<usize> (cols & 12) << 2);
  while (w < end4) {
    a0 = madd(a0, v128.load(w), v128.load(x));
    w += 16;
    x += 16;
  }
  let s = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  const end = end4 + (<usize> (cols & 3) << 2);
  while (w < end) {
    s += load<f32>(w) * load<f32>(x);
    w += 4;
    x += 4;
  }
  return s;
}

/**
 * One row against 8 vectors (`xs` bytes apart): one accumulator each, two
 * W vectors per iteration. Results go to y + j · ys.
 */
// @ts-ignore: decorator
@inline
function dot8(
  y: usize,
  ys: usize,
  w: usize,
  x: usize,
  xs: usize,
  cols: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let a4 = f32x4.splat(0);
  let a5 = f32x4.splat(0);
  let a6 = f32x4.splat(0);
  let a7 = f32x4.splat(0);
  const end8 = w + (<usize> (cols & ~7) << 2);
  while (w < end8) {
    const v = v128.load(w);
    const u = v128.load(w, 16);
    let p = x;
    a0 = madd(madd(a0, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a1 = madd(madd(a1, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a2 = madd(madd(a2, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a3 = madd(madd(a3, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a4 = madd(madd(a4, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a5 = madd(madd(a5, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a6 = madd(madd(a6, v, v128.load(p)), u, v128.load(p, 16));
    p += xs;
    a7 = madd(madd(a7, v, v128.load(p)), u, v128.load(p, 16));
    w += 32;
    x += 32;
  }
  if (cols & 4) {
    const v = v128.load(w);
    let p = x;
    a0 = madd(a0, v, v128.load(p));
    p += xs;
    a1 = madd(a1, v, v128.load(p));
    p += xs;
    a2 = madd(a2, v, v128.load(p));
    p += xs;
    a3 = madd(a3, v, v128.load(p));
    p += xs;
    a4 = madd(a4, v, v128.load(p));
    p += xs;
    a5 = madd(a5, v, v128.load(p));
    p += xs;
    a6 = madd(a6, v, v128.load(p));
    p += xs;
    a7 = madd(a7, v, v128.load(p));
    w += 16;
    x += 16;
  }
  let s0 = hsum(a0);
  let s1 = hsum(a1);
  let s2 = hsum(a2);
  let s3 = hsum(a3);
  let s4 = hsum(a4);
  let s5 = hsum(a5);
  let s6 = hsum(a6);
  let s7 = hsum(a7);
  for (let c = 0; c < (cols & 3); c++) {
    const o = <usize> c << 2;
    const v = load<f32>(w + o);
    let p = x + o;
    s0 += v * load<f32>(p);
    p += xs;
    s1 += v * load<f32>(p);
    p += xs;
    s2 += v * load<f32>(p);
    p += xs;
    s3 += v * load<f32>(p);
    p += xs;
    s4 += v * load<f32>(p);
    p += xs;
    s5 += v * load<f32>(p);
    p += xs;
    s6 += v * load<f32>(p);
    p += xs;
    s7 += v * load<f32>(p);
  }
  store<f32>(y, s0);
  store<f32>(y + ys, s1);
  store<f32>(y + 2 * ys, s2);
  store<f32>(y + 3 * ys, s3);
  store<f32>(y + 4 * ys, s4);
  store<f32>(y + 5 * ys, s5);
  store<f32>(y + 6 * ys, s6);
  store<f32>(y + 7 * ys, s7);
}

/** One row against 4 vectors: two accumulators each (8 live). */
// @ts-ignore: decorator
@inline
function dot4(
  y: usize,
  ys: usize,
  w: usize,
  x: usize,
  xs: usize,
  cols: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let c0 = f32x4.splat(0);
  let c1 = f32x4.splat(0);
  let d0 = f32x4.splat(0);
  let d1 = f32x4.splat(0);
  const end8 = w + (<usize> (cols & ~7) << 2);
  while (w < end8) {
    const v = v128.load(w);
    const u = v128.load(w, 16);
    let p = x;
    a0 = madd(a0, v, v128.load(p));
    a1 = madd(a1, u, v128.load(p, 16));
    p += xs;
    b0 = madd(b0, v, v128.load(p));
    b1 = madd(b1, u, v128.load(p, 16));
    p += xs;
    c0 = madd(c0, v, v128.load(p));
    c1 = madd(c1, u, v128.load(p, 16));
    p += xs;
    d0 = madd(d0, v, v128.load(p));
    d1 = madd(d1, u, v128.load(p, 16));
    w += 32;
    x += 32;
  }
  if (cols & 4) {
    const v = v128.load(w);
    let p = x;
    a0 = madd(a0, v, v128.load(p));
    p += xs;
    b0 = madd(b0, v, v128.load(p));
    p += xs;
    c0 = madd(c0, v, v128.load(p));
    p += xs;
    d0 = madd(d0, v, v128.load(p));
    w += 16;
    x += 16;
  }
  let s0 = hsum(f32x4.add(a0, a1));
  let s1 = hsum(f32x4.add(b0, b1));
  let s2 = hsum(f32x4.add(c0, c1));
  let s3 = hsum(f32x4.add(d0, d1));
  for (let c = 0; c < (cols & 3); c++) {
    const o = <usize> c << 2;
    const v = load<f32>(w + o);
    let p = x + o;
    s0 += v * load<f32>(p);
    p += xs;
    s1 += v * load<f32>(p);
    p += xs;
    s2 += v * load<f32>(p);
    p += xs;
    s3 += v * load<f32>(p);
  }
  store<f32>(y, s0);
  store<f32>(y + ys, s1);
  store<f32>(y + 2 * ys, s2);
  store<f32>(y + 3 * ys, s3);
}

/** One row against 2 vectors: four accumulators each over 16 floats. */
// @ts-ignore: decorator
@inline
function dot2(
  y: usize,
  ys: usize,
  w: usize,
  x: usize,
  xs: usize,
  cols: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  let b0 = f32x4.splat(0);
  let b1 = f32x4.splat(0);
  let b2 = f32x4.splat(0);
  let b3 = f32x4.splat(0);
  const z = x + xs;
  let o: usize = 0;
  const n16 = <usize> (cols & ~15) << 2;
  while (o < n16) {
    let v = v128.load(w + o);
    a0 = madd(a0, v, v128.load(x + o));
    b0 = madd(b0, v, v128.load(z + o));
    v = v128.load(w + o, 16);
    a1 = madd(a1, v, v128.load(x + o, 16));
    b1 = madd(b1, v, v128.load(z + o, 16));
    v = v128.load(w + o, 32);
    a2 = madd(a2, v, v128.load(x + o, 32));
    b2 = madd(b2, v, v128.load(z + o, 32));
    v = v128.load(w + o, 48);
    a3 = madd(a3, v, v128.load(x + o, 48));
    b3 = madd(b3, v, v128.load(z + o, 48));
    o += 64;
  }
  const n4 = <usize> (cols & ~3) << 2;
  while (o < n4) {
    const v = v128.load(w + o);
    a0 = madd(a0, v, v128.load(x + o));
    b0 = madd(b0, v, v128.load(z + o));
    o += 16;
  }
  let s0 = hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)));
  let s1 = hsum(f32x4.add(f32x4.add(b0, b1), f32x4.add(b2, b3)));
  const n = <usize> cols << 2;
  while (o < n) {
    const v = load<f32>(w + o);
    s0 += v * load<f32>(x + o);
    s1 += v * load<f32>(z + o);
    o += 4;
  }
  store<f32>(y, s0);
  store<f32>(y + ys, s1);
}

/** y[r] = Σ_c W[r, c] · x[c] for r < rows. */
export function matvec_f32(
  y: usize,
  w: usize,
  x: usize,
  rows: i32,
  cols: i32,
): void {
  const rowBytes = <usize> cols << 2;
  for (let r = 0; r < rows; r++) {
    store<f32>(y + (<usize> r << 2), dot1(w, x, cols));
    w += rowBytes;
  }
}

/**
 * y[j · ldy + r] = Σ_c W[r, c] · x[j · cols + c] for j < m, r < rows.
 * Each row of W is loaded from memory once and used for all m vectors while
 * it sits in L1.
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
  const rowBytes = <usize> cols << 2;
  const ys = <usize> ldy << 2;
  for (let r = 0; r < rows; r++) {
    const yr = y + (<usize> r << 2);
    let j = 0;
    for (; j + 8 <= m; j += 8) {
      dot8(
        yr + <usize> j * ys,
        ys,
        w,
        x + <usize> j * rowBytes,
        rowBytes,
        cols,
      );
    }
    if (j + 4 <= m) {
      dot4(
        yr + <usize> j * ys,
        ys,
        w,
        x + <usize> j * rowBytes,
        rowBytes,
        cols,
      );
      j += 4;
    }
    if (j + 2 <= m) {
      dot2(
        yr + <usize> j * ys,
        ys,
        w,
        x + <usize> j * rowBytes,
        rowBytes,
        cols,
      );
      j += 2;
    }
    if (j < m) {
      store<f32>(yr + <usize> j * ys, dot1(w, x + <usize> j * rowBytes, cols));
    }
    w += rowBytes;
  }
}
