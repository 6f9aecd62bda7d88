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
// per block. The widening loads and the dot products all but fill the
// vector pipes, so the work is arranged to share them:
// - four rows, one from each quarter of W (see matmul.ts for why not
//   neighbours), meet each block of x: x is widened once for all four;
// - their four block sums are gathered into one vector (lane = row), so the
//   conversion to f32, the four scales dw (gathered and converted four at a
//   time) and the accumulation are one vector operation each, not four;
// - a batch passes every vector over a quad of rows while it is in L1.
// Every output is Σ over blocks, front to back, of f32(isum) · f32(dw · dx)
// accumulated in f32, whichever kernel computes it: a row's result does not
// depend on the rows or vectors it shares a call with.

import { f32ToHalf, halfToF32, halvesToF32 } from "./half";

const BLOCK: usize = 34;

/** The block's scale d as f32. */
// @ts-ignore: decorator
@inline
function scale(block: usize): f32 {
  return halfToF32(load<u16>(block));
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

/** The 32-product integer dot of two blocks' q, as four i32 partial sums. */
// @ts-ignore: decorator
@inline
function blockDot(x0: v128, x1: v128, x2: v128, x3: v128, w: usize): v128 {
  return i32x4.add(
    i32x4.add(
      i32x4.dot_i16x8_s(x0, v128.load8x8_s(w, 2)),
      i32x4.dot_i16x8_s(x1, v128.load8x8_s(w, 10)),
    ),
    i32x4.add(
      i32x4.dot_i16x8_s(x2, v128.load8x8_s(w, 18)),
      i32x4.dot_i16x8_s(x3, v128.load8x8_s(w, 26)),
    ),
  );
}

/** [Σ s0, Σ s1, Σ s2, Σ s3]: four block sums in one vector (exact, integer). */
// @ts-ignore: decorator
@inline
function gather4(s0: v128, s1: v128, s2: v128, s3: v128): v128 {
  const a = i32x4.add(
    v128.shuffle<i32>(s0, s1, 0, 4, 1, 5),
    v128.shuffle<i32>(s0, s1, 2, 6, 3, 7),
  );
  const b = i32x4.add(
    v128.shuffle<i32>(s2, s3, 0, 4, 1, 5),
    v128.shuffle<i32>(s2, s3, 2, 6, 3, 7),
  );
  return i32x4.add(
    v128.shuffle<i32>(a, b, 0, 1, 4, 5),
    v128.shuffle<i32>(a, b, 2, 3, 6, 7),
  );
}

/**
 * Rows w0, w0 + seg, w0 + 2·seg, w0 + 3·seg against one quantized vector x;
 * results at y, y + yq, y + 2·yq, y + 3·yq.
 */
// @ts-ignore: decorator
@inline
function quad(
  y: usize,
  yq: usize,
  w0: usize,
  seg: usize,
  x: usize,
  blocks: i32,
): void {
  let acc = f32x4.splat(0);
  for (let b = 0; b < blocks; b++) {
    const x0 = v128.load8x8_s(x, 2);
    const x1 = v128.load8x8_s(x, 10);
    const x2 = v128.load8x8_s(x, 18);
    const x3 = v128.load8x8_s(x, 26);
    const w1 = w0 + seg;
    const w2 = w1 + seg;
    const w3 = w2 + seg;
    let h = v128.load16_lane(w0, i32x4.splat(0), 0);
    h = v128.load16_lane(w1, h, 2);
    h = v128.load16_lane(w2, h, 4);
    h = v128.load16_lane(w3, h, 6);
    const isum = gather4(
      blockDot(x0, x1, x2, x3, w0),
      blockDot(x0, x1, x2, x3, w1),
      blockDot(x0, x1, x2, x3, w2),
      blockDot(x0, x1, x2, x3, w3),
    );
    const d = f32x4.mul(halvesToF32(h), f32x4.splat(scale(x)));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(isum), d));
    w0 += BLOCK;
    x += BLOCK;
  }
  store<f32>(y, f32x4.extract_lane(acc, 0));
  store<f32>(y + yq, f32x4.extract_lane(acc, 1));
  store<f32>(y + 2 * yq, f32x4.extract_lane(acc, 2));
  store<f32>(y + 3 * yq, f32x4.extract_lane(acc, 3));
}

/** One row against one vector (the rows that do not fill a quad). */
function dot(w: usize, x: usize, blocks: i32): f32 {
  let acc: f32 = 0;
  for (let b = 0; b < blocks; b++) {
    const s = blockDot(
      v128.load8x8_s(x, 2),
      v128.load8x8_s(x, 10),
      v128.load8x8_s(x, 18),
      v128.load8x8_s(x, 26),
      w,
    );
    const isum = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) +
      i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
    acc += <f32>isum * (scale(w) * scale(x));
    w += BLOCK;
    x += BLOCK;
  }
  return acc;
}

/** y[r] = Σ_c W[r, c] · x[c], W and x q8_0 (cols a multiple of 32). */
export function matvec_q8_0(
  y: usize,
  w: usize,
  xq: usize,
  rows: i32,
  cols: i32,
): void {
  matmul_q8_0(y, w, xq, rows, cols, 1, rows);
}

/**
 * y[j · ldy + r] = Σ_c W[r, c] · x[j, c] for j < m, W and the m vectors
 * q8_0 (each vector cols / 32 blocks, one after another). Rows go in quads,
 * one from each quarter of W, and every vector passes over a quad while it
 * is in L1; the rows % 4 left over go one at a time.
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
  const q = rows >> 2;
  const seg = <usize>q * rowBytes;
  const yq = <usize>q << 2;
  for (let r = 0; r < q; r++) {
    const w0 = w + <usize>r * rowBytes;
    const y0 = y + (<usize>r << 2);
    for (let j = 0; j < m; j++) {
      quad(y0 + <usize>j * ys, yq, w0, seg, xq + <usize>j * rowBytes, blocks);
    }
  }
  for (let r = q << 2; r < rows; r++) {
    const wr = w + <usize>r * rowBytes;
    for (let j = 0; j < m; j++) {
      store<f32>(
        y + (<usize>r << 2) + <usize>j * ys,
        dot(wr, xq + <usize>j * rowBytes, blocks),
      );
    }
  }
}
