/**
 * Plain-TS twins of assembly/matmul.ts: one dot product per output, summed
 * in order in f64 and rounded to f32 once. The kernels sum in f32 in another
 * order, so they agree to rounding (tests use NMSE), not bit for bit.
 */

/** y[r] = Σ_c W[r, c] · x[c] (W row-major, rows × cols). */
export function matvec_f32(
  y: Float32Array,
  w: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
): void {
  matmul_f32(y, w, x, rows, cols, 1, rows);
}

/** y[j · ldy + r] = Σ_c W[r, c] · x[j · cols + c] for j < m. */
export function matmul_f32(
  y: Float32Array,
  w: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
  m: number,
  ldy: number,
): void {
  for (let j = 0; j < m; j++) {
    for (let r = 0; r < rows; r++) {
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += w[r * cols + c] * x[j * cols + c];
      y[j * ldy + r] = sum;
    }
  }
}
