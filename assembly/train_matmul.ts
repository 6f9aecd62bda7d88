// GEMM for training: many rows at once (a batch of images × their patches),
// forward and the two backward products of a linear layer.
//
//   forward   Y  = X · Wᵀ      gemm_nt_f32   (W is rows × cols, as everywhere)
//   backward  dX = dY · W      gemm_nn_f32
//             dW += dYᵀ · X    gemm_tn_f32
//
// All three run one micro-kernel: a 4 × 8 tile of C held in eight f32x4
// accumulators, C[i..i+4, j..j+8] += Σ_p a(i, p) · B[p, j..j+8]. A is read
// through a (row stride, column stride) pair, so Aᵀ costs nothing; B must
// have contiguous rows along j, so the NT form first transposes B into a
// caller-owned scratch (k × n floats; small next to the m·n·k product).
// Strides (lda, ldb, ldc) are in elements. beta = 0 overwrites C (whatever it
// held, NaN included), any other beta gives C = beta · C + product.

@inline
function finish(p: usize, acc: v128, beta: f32): void {
  if (beta == 0) {
    v128.store(p, acc);
  } else {
    v128.store(p, f32x4.add(f32x4.mul(v128.load(p), f32x4.splat(beta)), acc));
  }
}

@inline
function finish1(p: usize, acc: f32, beta: f32): void {
  if (beta == 0) store<f32>(p, acc);
  else store<f32>(p, beta * load<f32>(p) + acc);
}

/** C (m × n) = beta · C + Σ_p a(i, p) · B[p, j]; a(i, p) = A[i·ars + p·acs]. */
export function gemmCore(
  c: usize,
  a: usize,
  b: usize,
  m: i32,
  n: i32,
  k: i32,
  ars: i32,
  acs: i32,
  ldb: i32,
  ldc: i32,
  beta: f32,
): void {
  const ars4 = <usize>ars << 2;
  const acs4 = <usize>acs << 2;
  const ldb4 = <usize>ldb << 2;
  const ldc4 = <usize>ldc << 2;
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const a0 = a + <usize>i * ars4;
    const c0 = c + <usize>i * ldc4;
    let j = 0;
    for (; j + 8 <= n; j += 8) {
      let s00 = f32x4.splat(0), s01 = f32x4.splat(0);
      let s10 = f32x4.splat(0), s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0), s21 = f32x4.splat(0);
      let s30 = f32x4.splat(0), s31 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(pb);
        const b1 = v128.load(pb, 16);
        let x = f32x4.splat(load<f32>(pa));
        s00 = f32x4.add(s00, f32x4.mul(x, b0));
        s01 = f32x4.add(s01, f32x4.mul(x, b1));
        x = f32x4.splat(load<f32>(pa + ars4));
        s10 = f32x4.add(s10, f32x4.mul(x, b0));
        s11 = f32x4.add(s11, f32x4.mul(x, b1));
        x = f32x4.splat(load<f32>(pa + 2 * ars4));
        s20 = f32x4.add(s20, f32x4.mul(x, b0));
        s21 = f32x4.add(s21, f32x4.mul(x, b1));
        x = f32x4.splat(load<f32>(pa + 3 * ars4));
        s30 = f32x4.add(s30, f32x4.mul(x, b0));
        s31 = f32x4.add(s31, f32x4.mul(x, b1));
        pa += acs4;
        pb += ldb4;
      }
      const pc = c0 + (<usize>j << 2);
      finish(pc, s00, beta);
      finish(pc + 16, s01, beta);
      finish(pc + ldc4, s10, beta);
      finish(pc + ldc4 + 16, s11, beta);
      finish(pc + 2 * ldc4, s20, beta);
      finish(pc + 2 * ldc4 + 16, s21, beta);
      finish(pc + 3 * ldc4, s30, beta);
      finish(pc + 3 * ldc4 + 16, s31, beta);
    }
    for (; j + 4 <= n; j += 4) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      let s2 = f32x4.splat(0), s3 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const b0 = v128.load(pb);
        s0 = f32x4.add(s0, f32x4.mul(f32x4.splat(load<f32>(pa)), b0));
        s1 = f32x4.add(s1, f32x4.mul(f32x4.splat(load<f32>(pa + ars4)), b0));
        s2 = f32x4.add(
          s2,
          f32x4.mul(f32x4.splat(load<f32>(pa + 2 * ars4)), b0),
        );
        s3 = f32x4.add(
          s3,
          f32x4.mul(f32x4.splat(load<f32>(pa + 3 * ars4)), b0),
        );
        pa += acs4;
        pb += ldb4;
      }
      const pc = c0 + (<usize>j << 2);
      finish(pc, s0, beta);
      finish(pc + ldc4, s1, beta);
      finish(pc + 2 * ldc4, s2, beta);
      finish(pc + 3 * ldc4, s3, beta);
    }
    for (; j < n; j++) {
      let s0: f32 = 0, s1: f32 = 0, s2: f32 = 0, s3: f32 = 0;
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const bv = load<f32>(pb);
        s0 += load<f32>(pa) * bv;
        s1 += load<f32>(pa + ars4) * bv;
        s2 += load<f32>(pa + 2 * ars4) * bv;
        s3 += load<f32>(pa + 3 * ars4) * bv;
        pa += acs4;
        pb += ldb4;
      }
      const pc = c0 + (<usize>j << 2);
      finish1(pc, s0, beta);
      finish1(pc + ldc4, s1, beta);
      finish1(pc + 2 * ldc4, s2, beta);
      finish1(pc + 3 * ldc4, s3, beta);
    }
  }
  // The last m % 4 rows, one at a time.
  for (; i < m; i++) {
    const a0 = a + <usize>i * ars4;
    const c0 = c + <usize>i * ldc4;
    let j = 0;
    for (; j + 8 <= n; j += 8) {
      let s0 = f32x4.splat(0), s1 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        const x = f32x4.splat(load<f32>(pa));
        s0 = f32x4.add(s0, f32x4.mul(x, v128.load(pb)));
        s1 = f32x4.add(s1, f32x4.mul(x, v128.load(pb, 16)));
        pa += acs4;
        pb += ldb4;
      }
      const pc = c0 + (<usize>j << 2);
      finish(pc, s0, beta);
      finish(pc + 16, s1, beta);
    }
    for (; j + 4 <= n; j += 4) {
      let s0 = f32x4.splat(0);
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        s0 = f32x4.add(
          s0,
          f32x4.mul(f32x4.splat(load<f32>(pa)), v128.load(pb)),
        );
        pa += acs4;
        pb += ldb4;
      }
      finish(c0 + (<usize>j << 2), s0, beta);
    }
    for (; j < n; j++) {
      let s: f32 = 0;
      let pa = a0;
      let pb = b + (<usize>j << 2);
      for (let p = 0; p < k; p++) {
        s += load<f32>(pa) * load<f32>(pb);
        pa += acs4;
        pb += ldb4;
      }
      finish1(c0 + (<usize>j << 2), s, beta);
    }
  }
}

/** out (cols × rows, row stride ldo) = xᵀ for x (rows × cols, row stride ldx). */
export function transposeCore(
  out: usize,
  x: usize,
  rows: i32,
  cols: i32,
  ldx: i32,
  ldo: i32,
): void {
  // Blocks of 8 × 8 keep both the reads and the writes within a few lines.
  for (let r0 = 0; r0 < rows; r0 += 8) {
    const r1 = min(r0 + 8, rows);
    for (let c0 = 0; c0 < cols; c0 += 8) {
      const c1 = min(c0 + 8, cols);
      for (let r = r0; r < r1; r++) {
        const px = x + ((<usize>r * ldx) << 2);
        for (let cc = c0; cc < c1; cc++) {
          store<f32>(
            out + ((<usize>cc * ldo + r) << 2),
            load<f32>(px + (<usize>cc << 2)),
          );
        }
      }
    }
  }
}

/** C (m × n) = beta · C + A (m × k) · B (k × n). */
export function gemm_nn_f32(
  c: usize,
  a: usize,
  b: usize,
  m: i32,
  n: i32,
  k: i32,
  lda: i32,
  ldb: i32,
  ldc: i32,
  beta: f32,
): void {
  gemmCore(c, a, b, m, n, k, lda, 1, ldb, ldc, beta);
}

/** C (m × n) = beta · C + Aᵀ · B, with A (k × m) and B (k × n). */
export function gemm_tn_f32(
  c: usize,
  a: usize,
  b: usize,
  m: i32,
  n: i32,
  k: i32,
  lda: i32,
  ldb: i32,
  ldc: i32,
  beta: f32,
): void {
  // Here k is the batch (thousands of rows): in blocks of 128 rows, the
  // strips of A and B one tile reads stay in cache for the next tile.
  for (let p = 0; p < k; p += 128) {
    gemmCore(
      c,
      a + ((<usize>p * lda) << 2),
      b + ((<usize>p * ldb) << 2),
      m,
      n,
      min(128, k - p),
      1,
      lda,
      ldb,
      ldc,
      p == 0 ? beta : 1,
    );
  }
}

/**
 * C (m × n) = beta · C + A (m × k) · Bᵀ, with B (n × k). scratch: k · n
 * floats that receive Bᵀ.
 */
export function gemm_nt_f32(
  c: usize,
  a: usize,
  b: usize,
  scratch: usize,
  m: i32,
  n: i32,
  k: i32,
  lda: i32,
  ldb: i32,
  ldc: i32,
  beta: f32,
): void {
  transposeCore(scratch, b, n, k, ldb, n);
  gemmCore(c, a, scratch, m, n, k, lda, 1, n, ldc, beta);
}
