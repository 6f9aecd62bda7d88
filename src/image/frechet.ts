/**
 * The Fréchet distance between two Gaussians fitted to feature sets (as FID
 * computes it on Inception features; here on the digit classifier's):
 *   d² = |μ₁ − μ₂|² + Tr(Σ₁) + Tr(Σ₂) − 2 Tr((Σ₁^½ Σ₂ Σ₁^½)^½)
 * The matrix square roots come from symmetric eigendecompositions (cyclic
 * Jacobi, in f64), which suits the small feature widths used here.
 */

/** Mean and covariance (divided by n − 1) of n rows of `dim` features. */
export function meanCov(x: ArrayLike<number>, n: number, dim: number) {
  const mu = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) mu[j] += x[i * dim + j];
  }
  for (let j = 0; j < dim; j++) mu[j] /= n;
  const cov = new Float64Array(dim * dim);
  const d = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) d[j] = x[i * dim + j] - mu[j];
    for (let a = 0; a < dim; a++) {
      const da = d[a];
      for (let b = a; b < dim; b++) cov[a * dim + b] += da * d[b];
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = a; b < dim; b++) {
      const v = cov[a * dim + b] / Math.max(1, n - 1);
      cov[a * dim + b] = v;
      cov[b * dim + a] = v;
    }
  }
  return { mu, cov };
}

/** Eigenvalues and eigenvectors (columns of V) of a symmetric matrix. */
export function symmetricEigen(
  m: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    }
    if (off < 1e-22) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        // The rotation that zeroes a[p][q] (Golub & Van Loan, 8.5.2).
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) /
          (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p], akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k], aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p], vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = a[i * n + i];
  return { values, vectors: v };
}

/** The symmetric PSD square root V √Λ Vᵀ (negative rounding noise clipped to 0). */
function sqrtPsd(m: Float64Array, n: number): Float64Array {
  const { values, vectors } = symmetricEigen(m, n);
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const s = Math.sqrt(Math.max(0, values[k]));
    for (let i = 0; i < n; i++) {
      const vik = vectors[i * n + k] * s;
      for (let j = 0; j < n; j++) out[i * n + j] += vik * vectors[j * n + k];
    }
  }
  return out;
}

function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k];
      for (let j = 0; j < n; j++) out[i * n + j] += aik * b[k * n + j];
    }
  }
  return out;
}

/** Fréchet distance between N(μ₁, Σ₁) and N(μ₂, Σ₂). */
export function frechetDistance(
  mu1: Float64Array,
  cov1: Float64Array,
  mu2: Float64Array,
  cov2: Float64Array,
): number {
  const n = mu1.length;
  let d = 0;
  for (let i = 0; i < n; i++) d += (mu1[i] - mu2[i]) ** 2;
  const s1 = sqrtPsd(cov1, n);
  const m = matmul(matmul(s1, cov2, n), s1, n);
  // Symmetrise against rounding before the eigendecomposition.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = (m[i * n + j] + m[j * n + i]) / 2;
      m[i * n + j] = v;
      m[j * n + i] = v;
    }
  }
  const { values } = symmetricEigen(m, n);
  let trSqrt = 0;
  for (const v of values) trSqrt += Math.sqrt(Math.max(0, v));
  let tr = 0;
  for (let i = 0; i < n; i++) tr += cov1[i * n + i] + cov2[i * n + i];
  return Math.max(0, d + tr - 2 * trSqrt);
}

/** Fréchet distance between two feature sets (rows of `dim`). */
export function frechetBetween(
  a: ArrayLike<number>,
  na: number,
  b: ArrayLike<number>,
  nb: number,
  dim: number,
): number {
  const x = meanCov(a, na, dim), y = meanCov(b, nb, dim);
  return frechetDistance(x.mu, x.cov, y.mu, y.cov);
}
