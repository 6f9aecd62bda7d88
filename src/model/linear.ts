/**
 * A weight matrix resident in WASM memory and the one function that
 * multiplies by it, whatever its stored type. The model calls `linear` and
 * never looks at types; quantizing the input for q8_0 happens here, once per
 * input vector batch (callers pass the same `xq` scratch to reuse it).
 */
import type { Runtime } from "../kernels/runtime.ts";

export type MatrixType = "f32" | "q8_0";

export interface Matrix {
  type: MatrixType;
  /** Byte offset of row 0 in linear memory. */
  ptr: number;
  rows: number;
  cols: number;
}

/** Kernels take at most this many vectors at once. */
export const MAX_BATCH = 16;

/**
 * y[j] = W x[j] for j < m (m ≤ MAX_BATCH); y rows are `ldy` floats apart.
 * For q8_0, pass `quantized = true` when `xq` already holds x quantized
 * (several matrices share one input). With a worker pool on the runtime
 * the rows are split between threads; every row is still computed by the
 * same kernel, so the result is bit for bit the single-thread one.
 */
export function linear(
  rt: Runtime,
  y: number,
  w: Matrix,
  x: number,
  m: number,
  ldy: number,
  xq: number,
  quantized = false,
): void {
  const k = rt.k;
  const parallel = rt.parallel;
  if (w.type === "f32") {
    if (parallel) parallel.matmul(false, y, w.ptr, x, w.rows, w.cols, m, ldy);
    else if (m === 1) k.matvec_f32(y, w.ptr, x, w.rows, w.cols);
    else k.matmul_f32(y, w.ptr, x, w.rows, w.cols, m, ldy);
    return;
  }
  if (!quantized) k.quantize_q8_0(xq, x, m * w.cols);
  if (parallel) parallel.matmul(true, y, w.ptr, xq, w.rows, w.cols, m, ldy);
  else if (m === 1) k.matvec_q8_0(y, w.ptr, xq, w.rows, w.cols);
  else k.matmul_q8_0(y, w.ptr, xq, w.rows, w.cols, m, ldy);
}
