/**
 * Plain-TS twins of assembly/q8.ts. q8_0 is GGUF's layout: blocks of 34
 * bytes, an f16 scale d (little-endian) then 32 int8 q, standing for d · q.
 * quantize_q8_0 follows ggml's quantize_row_q8_0_ref step by step in f32:
 * d = amax / 127, id = 1 / d (0 when d = 0), q = roundf(x · id), and d is
 * stored rounded to f16 (q uses the unrounded d). Where C is undefined the
 * kernel's choice is spelled out: NaN is skipped by amax and becomes q = 0,
 * and q saturates to [−128, 127].
 */
import { f32BitsToHalf, halfToF32Bits } from "./f16.ts";

const f32 = Math.fround;
const BLOCK = 34;
const bits = new Uint32Array(1);
const asF32 = new Float32Array(bits.buffer);

function f32Bits(v: number): number {
  asF32[0] = v;
  return bits[0];
}

function halfValue(h: number): number {
  bits[0] = halfToF32Bits(h);
  return asF32[0];
}

/** C's roundf (halfway cases away from zero), then saturated to int8; NaN → 0. */
function toInt8(v: number): number {
  if (Number.isNaN(v)) return 0;
  const r = Math.sign(v) * Math.floor(Math.abs(v) + 0.5);
  return Math.max(-128, Math.min(127, r));
}

/** Bytes one q8_0 row of `cols` (a multiple of 32) takes. */
export function q8RowBytes(cols: number): number {
  return (cols / 32) * BLOCK;
}

/** Quantizes n floats (a multiple of 32) into n / 32 blocks. */
export function quantize_q8_0(
  out: Uint8Array,
  x: Float32Array,
  n: number,
): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < Math.floor(n / 32); b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[b * 32 + j]);
      if (a > amax) amax = a;
    }
    const d = f32(amax / 127);
    const id = d !== 0 ? f32(1 / d) : 0;
    view.setUint16(b * BLOCK, f32BitsToHalf(f32Bits(d)), true);
    for (let j = 0; j < 32; j++) {
      view.setInt8(b * BLOCK + 2 + j, toInt8(f32(x[b * 32 + j] * id)));
    }
  }
}

/** Expands n / 32 blocks into n floats: d · q, rounded to f32. */
export function dequantize_q8_0(
  out: Float32Array,
  q: Uint8Array,
  n: number,
): void {
  const view = new DataView(q.buffer, q.byteOffset, q.byteLength);
  for (let b = 0; b < Math.floor(n / 32); b++) {
    const d = halfValue(view.getUint16(b * BLOCK, true));
    for (let j = 0; j < 32; j++) {
      out[b * 32 + j] = d * view.getInt8(b * BLOCK + 2 + j);
    }
  }
}

/** y[r] = Σ_c W[r, c] · x[c] with W and x q8_0. */
export function matvec_q8_0(
  y: Float32Array,
  w: Uint8Array,
  xq: Uint8Array,
  rows: number,
  cols: number,
): void {
  matmul_q8_0(y, w, xq, rows, cols, 1, rows);
}

/**
 * y[j · ldy + r] = Σ_b f32(dw · dx) · Σ_i wq · xq over the blocks b of row r
 * and vector j: integer block sums, one f32 scale product per block (as the
 * kernel rounds it), summed in f64.
 */
export function matmul_q8_0(
  y: Float32Array,
  w: Uint8Array,
  xq: Uint8Array,
  rows: number,
  cols: number,
  m: number,
  ldy: number,
): void {
  const wv = new DataView(w.buffer, w.byteOffset, w.byteLength);
  const xv = new DataView(xq.buffer, xq.byteOffset, xq.byteLength);
  const blocks = Math.floor(cols / 32);
  const rowBytes = blocks * BLOCK;
  for (let j = 0; j < m; j++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let b = 0; b < blocks; b++) {
        const wo = r * rowBytes + b * BLOCK, xo = j * rowBytes + b * BLOCK;
        let isum = 0;
        for (let i = 2; i < BLOCK; i++) {
          isum += wv.getInt8(wo + i) * xv.getInt8(xo + i);
        }
        const d = f32(
          halfValue(wv.getUint16(wo, true)) * halfValue(xv.getUint16(xo, true)),
        );
        sum += d * isum;
      }
      y[j * ldy + r] = sum;
    }
  }
}
