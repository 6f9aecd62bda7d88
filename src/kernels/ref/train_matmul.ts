/**
 * Plain-TS twins of assembly/train_matmul.ts: the textbook triple loops.
 * They take Float32Array or Float64Array, so gradient checks can run the
 * same math in f64. Strides are in elements; beta = 0 overwrites C.
 */
export type Floats = Float32Array | Float64Array;

/** C (m × n) = beta · C + A (m × k) · B (k × n). */
export function gemm_nn_f32(
  c: Floats,
  a: Floats,
  b: Floats,
  m: number,
  n: number,
  k: number,
  lda: number,
  ldb: number,
  ldc: number,
  beta: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * lda + p] * b[p * ldb + j];
      c[i * ldc + j] = beta === 0 ? s : beta * c[i * ldc + j] + s;
    }
  }
}

/** C (m × n) = beta · C + Aᵀ · B, with A (k × m) and B (k × n). */
export function gemm_tn_f32(
  c: Floats,
  a: Floats,
  b: Floats,
  m: number,
  n: number,
  k: number,
  lda: number,
  ldb: number,
  ldc: number,
  beta: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[p * lda + i] * b[p * ldb + j];
      c[i * ldc + j] = beta === 0 ? s : beta * c[i * ldc + j] + s;
    }
  }
}

/** C (m × n) = beta · C + A (m × k) · Bᵀ, with B (n × k). */
export function gemm_nt_f32(
  c: Floats,
  a: Floats,
  b: Floats,
  m: number,
  n: number,
  k: number,
  lda: number,
  ldb: number,
  ldc: number,
  beta: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = beta === 0 ? s : beta * c[i * ldc + j] + s;
    }
  }
}
