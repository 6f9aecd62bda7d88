// q8_0 quantization and products: GGUF's layout, blocks of 34 bytes (an f16
// scale d, then 32 int8 q, standing for d · q). Contract:
// src/kernels/exports.ts; plain-TS twin: src/kernels/ref/q8.ts.
//
// quantize_q8_0 is ggml's quantize_row_q8_0_ref exactly: d = amax / 127 in
// f32, q = roundf(x · (1/d)) (ties away from zero) with the f32 d, and d
// stored rounded to f16. Inputs that C leaves undefined are pinned down:
// NaN is skipped by amax and quantizes to 0, out-of-range values saturate.
//
// The products take x quantized too, so each block is an integer dot
// product: v128.load8x8_s sign-extends 8 int8 to i16 as it loads, and
// i32x4.dot_i16x8_s multiplies and adds pairs into i32 lanes (exact: 32
// products of at most 128² fit easily). Then one f32 multiply by dw · dx
// per block. W is read one row at a time, front to back (see matmul.ts for
// why), and a batch meets each row while it is in L1.

import { f32ToHalf, halfToF32 } from "./half";

const BLOCK: usize = 34;

/** Integer dot product of the 32 int8 of two blocks (at w + 2 and x + 2), as i32 lanes. */
// @ts-ignore: decorator
@inline
function blockDot(w: usize, x: usize): v128 {
  const s0 = i32x4.dot_i16x8_s(v128.load8x8_s(w, 2), v128.load8x8_s(x, 2));
  const s1 = i32x4.dot_i16x8_s(v128.load8x8_s(w, 10), v128.load8x8_s(x, 10));
  const s2 = i32x4.dot_i16x8_s(v128.load8x8_s(w, 18), v128.load8x8_s(x, 18));
  const s3 = i32x4.dot_i16x8_s(v128.load8x8_s(w, 26), v128.load8x8_s(x, 26));
  return i32x4.add(i32x4.add(s0, s1), i32x4.add(s2, s3));
}

/** The block's scale d as f32. */
// @ts-ignore: decorator
@inline
function scale(block: usize): f32 {
  return halfToF32(load<u16>(block));
}

/** acc + isum · (dw · dx), lane by lane. */
// @ts-ignore: decorator
@inline
function accumulate(acc: v128, isum: v128, d: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), f32x4.splat(d)));
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline
function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** roundf, lane by lane: to nearest, ties away from zero (wasm's nearest ties to even). */
// @ts-ignore: decorator
@inline
function roundAway(v: v128): v128 {
  const t = f32x4.trunc(v);
  // v − t is exact; where it is at least one half, step away from zero.
  const up = f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5));
  const one = v128.or(
    v128.and(v, i32x4.splat(0x80000000)),
    f32x4.splat(1),
  );
  return f32x4.add(t, v128.and(one, up));
}

/** Eight f32 (a, b) times `id`, rounded, as 8 saturated i16. */
// @ts-ignore: decorator
@inline
function quantize8(a: v128, b: v128, id: v128): v128 {
  return i16x8.narrow_i32x4_s(
    i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(a, id))),
    i32x4.trunc_sat_f32x4_s(roundAway(f32x4.mul(b, id))),
  );
}

/** Quantizes n floats (n a multiple of 32; a partial last block is ignored) into n / 32 blocks. */
export function quantize_q8_0(out: usize, x: usize, n: i32): void {
  const blocks = n >> 5;
  for (let b = 0; b < blocks; b++) {
    const v0 = v128.load(x);
    const v1 = v128.load(x, 16);
    const v2 = v128.load(x, 32);
    const v3 = v128.load(x, 48);
    const v4 = v128.load(x, 64);
    const v5 = v128.load(x, 80);
    const v6 = v128.load(x, 96);
    const v7 = v128.load(x, 112);
    // pmax(a, b) is b only when a < b: a NaN never wins, as in the twin.
    let m = f32x4.pmax(
      f32x4.pmax(f32x4.pmax(f32x4.abs(v0), f32x4.abs(v1)), f32x4.pmax(f32x4.abs(v2), f32x4.abs(v3))),
      f32x4.pmax(f32x4.pmax(f32x4.abs(v4), f32x4.abs(v5)), f32x4.pmax(f32x4.abs(v6), f32x4.abs(v7))),
    );
    m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 2, 3, 0, 1));
    m = f32x4.pmax(m, v128.shuffle<f32>(m, m, 1, 0, 3, 2));
    const d = f32x4.extract_lane(m, 0) / 127;
    const id = f32x4.splat(d != 0 ? 1 / d : 0);
    store<u16>(out, <u16>f32ToHalf(d));
    v128.store(out, i8x16.narrow_i16x8_s(quantize8(v0, v1, id), quantize8(v2, v3, id)), 2);
    v128.store(out, i8x16.narrow_i16x8_s(quantize8(v4, v5, id), quantize8(v6, v7, id)), 18);
    x += 128;
    out += BLOCK;
  }
}

/** Expands n / 32 blocks into n floats: out = d · q. */
export function dequantize_q8_0(out: usize, q: usize, n: i32): void {
  const blocks = n >> 5;
  for (let b = 0; b < blocks; b++) {
    const d = f32x4.splat(scale(q));
    for (let i: usize = 0; i < 32; i += 8) {
      const v = v128.load8x8_s(q + i, 2);
      v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_low_i16x8_s(v)), d));
      v128.store(out, f32x4.mul(f32x4.convert_i32x4_s(i32x4.extend_high_i16x8_s(v)), d), 16);
      out += 32;
    }
    q += BLOCK;
  }
}

/** Σ over the row's blocks of dw · dx · (wq · xq). */
// @ts-ignore: decorator
@inline
function rowDot(w: usize, x: usize, blocks: i32): f32 {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let b = 0;
  for (; b + 2 <= blocks; b += 2) {
    a0 = accumulate(a0, blockDot(w, x), scale(w) * scale(x));
    a1 = accumulate(a1, blockDot(w + BLOCK, x + BLOCK), scale(w + BLOCK) * scale(x + BLOCK));
    w += 2 * BLOCK;
    x += 2 * BLOCK;
  }
  if (b < blocks) a0 = accumulate(a0, blockDot(w, x), scale(w) * scale(x));
  return hsum(f32x4.add(a0, a1));
}

/** y[r] = Σ_c W[r, c] · x[c], W and x q8_0 (cols a multiple of 32). */
export function matvec_q8_0(
  y: usize,
  w: usize,
  xq: usize,
  rows: i32,
  cols: i32,
): void {
  const blocks = cols >> 5;
  const rowBytes = <usize>blocks * BLOCK;
  for (let r = 0; r < rows; r++) {
    store<f32>(y + (<usize>r << 2), rowDot(w, xq, blocks));
    w += rowBytes;
  }
}

/** One row against 4 quantized vectors (`xs` bytes apart); results at y + j · ys. */
// @ts-ignore: decorator
@inline
function rowDot4(
  y: usize,
  ys: usize,
  w: usize,
  x: usize,
  xs: usize,
  blocks: i32,
): void {
  let a0 = f32x4.splat(0);
  let a1 = f32x4.splat(0);
  let a2 = f32x4.splat(0);
  let a3 = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    const w0 = v128.load8x8_s(w, 2);
    const w1 = v128.load8x8_s(w, 10);
    const w2 = v128.load8x8_s(w, 18);
    const w3 = v128.load8x8_s(w, 26);
    const dw = scale(w);
    let p = x;
    a0 = accumulate(a0, dot4(w0, w1, w2, w3, p), dw * scale(p));
    p += xs;
    a1 = accumulate(a1, dot4(w0, w1, w2, w3, p), dw * scale(p));
    p += xs;
    a2 = accumulate(a2, dot4(w0, w1, w2, w3, p), dw * scale(p));
    p += xs;
    a3 = accumulate(a3, dot4(w0, w1, w2, w3, p), dw * scale(p));
    w += BLOCK;
    x += BLOCK;
  }
  store<f32>(y, hsum(a0));
  store<f32>(y + ys, hsum(a1));
  store<f32>(y + 2 * ys, hsum(a2));
  store<f32>(y + 3 * ys, hsum(a3));
}

/** The block at x against W's block already widened to i16 (w0..w3). */
// @ts-ignore: decorator
@inline
function dot4(w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  const s0 = i32x4.dot_i16x8_s(w0, v128.load8x8_s(x, 2));
  const s1 = i32x4.dot_i16x8_s(w1, v128.load8x8_s(x, 10));
  const s2 = i32x4.dot_i16x8_s(w2, v128.load8x8_s(x, 18));
  const s3 = i32x4.dot_i16x8_s(w3, v128.load8x8_s(x, 26));
  return i32x4.add(i32x4.add(s0, s1), i32x4.add(s2, s3));
}

/**
 * y[j · ldy + r] = Σ_c W[r, c] · x[j, c] for j < m, W and the m vectors
 * q8_0 (each vector cols / 32 blocks, one after another).
 */
export function matmul_q8_0(
  y: usize,
  w: usize,
  xq: usize,
  rows: i32,
  cols: i32,
  m: i32,
  ldy: i32,
): void {
  const blocks = cols >> 5;
  const rowBytes = <usize>blocks * BLOCK;
  const ys = <usize>ldy << 2;
  for (let r = 0; r < rows; r++) {
    const yr = y + (<usize>r << 2);
    let j = 0;
    for (; j + 4 <= m; j += 4) {
      rowDot4(yr + <usize>j * ys, ys, w, xq + <usize>j * rowBytes, rowBytes, blocks);
    }
    for (; j < m; j++) {
      store<f32>(yr + <usize>j * ys, rowDot(w, xq + <usize>j * rowBytes, blocks));
    }
    w += rowBytes;
  }
}
