/**
 * Plain-TS twins of assembly/train_matmul.ts: the textbook triple loops.
 * They take Float32Array or Float64Array, so gradient checks can run the
 * same math in f64. Strides are in elements; beta = 0 overwrites C.
 */
export type Floats = Float32Array | Float64Array;

/**
 * C (m × n) = beta · C + A' · B' where A'[i, p] = a[i·ai + p·ap] and
 * B'[p, j] = b[p·bp + j·bj]: the one triple loop the three layouts share.
 */
function gemm(
  c: Floats,
  a: Floats,
  b: Floats,
  m: number,
  n: number,
  k: number,
  ai: number,
  ap: number,
  bp: number,
  bj: number,
  ldc: number,
  beta: number,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * ai + p * ap] * b[p * bp + j * bj];
      c[i * ldc + j] = beta === 0 ? s : beta * c[i * ldc + j] + s;
    }
  }
}

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
  gemm(c, a, b, m, n, k, lda, 1, ldb, 1, ldc, beta);
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
  gemm(c, a, b, m, n, k, 1, lda, ldb, 1, ldc, beta);
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
  gemm(c, a, b, m, n, k, lda, 1, 1, ldb, ldc, beta);
}
