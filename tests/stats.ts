/**
 * Statistical tests for seeded samplers, with critical values computed
 * from the distributions (never tuned to the data):
 *
 *   const r = ksTest(samples, normalCdf);       // or chiSquareTest, zTest
 *   assertPasses(r, "normal fill");             // fails with the numbers
 *
 * Every test takes a significance level `alpha` (default 0.001): the chance
 * that a correct sampler fails it. Seeds are fixed, so a passing test keeps
 * passing; the level says how surprising a failure would be.
 */
import assert from "node:assert/strict";

/** The default significance level: a correct sampler fails 1 time in 1000. */
export const ALPHA = 0.001;

export interface TestResult {
  /** What the test is, e.g. "chi-square (df 99)". */
  name: string;
  statistic: number;
  critical: number;
  /** statistic ≤ critical (for a z-test, |z| ≤ critical). */
  pass: boolean;
}

/** Throws with the statistic and its critical value when a test fails. */
export function assertPasses(result: TestResult, what: string): void {
  assert.ok(
    result.pass,
    `${what}: ${result.name} statistic ${result.statistic.toPrecision(5)} ` +
      `exceeds the critical value ${result.critical.toPrecision(5)}`,
  );
}

/** Throws unless the test rejects: for showing a test has power. */
export function assertRejects(result: TestResult, what: string): void {
  assert.ok(
    !result.pass,
    `${what}: ${result.name} should reject, but its statistic ` +
      `${result.statistic.toPrecision(5)} is within ${
        result.critical.toPrecision(5)
      }`,
  );
}

/**
 * Standard normal CDF Φ(x), by Abramowitz & Stegun 26.2.17 (absolute error
 * below 7.5e-8: far under any KS critical value for n ≤ 10⁸).
 */
export function normalCdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const t = 1 / (1 + 0.2316419 * Math.abs(x));
  const poly = t * (0.319381530 + t * (-0.356563782 +
        t * (1.781477937 + t * (-1.821255978 + t * 1.330274429))));
  const tail = Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI) * poly;
  return x >= 0 ? 1 - tail : tail;
}

/**
 * Standard normal quantile Φ⁻¹(p) for 1e-6 ≤ p ≤ 1 − 1e-6, by bisection on
 * normalCdf (its 7.5e-8 error moves z by under 1e-4 in that range).
 */
export function normalQuantile(p: number): number {
  if (!(p >= 1e-6 && p <= 1 - 1e-6)) {
    throw new RangeError(
      `normalQuantile: p must be in [1e-6, 1 − 1e-6], got ${p}`,
    );
  }
  let lo = -6, hi = 6;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The p-quantile of χ² with `df` degrees of freedom by the Wilson–Hilferty
 * cube approximation, (χ²/df)^(1/3) ≈ normal with mean 1 − 2/(9df) and
 * variance 2/(9df). At p = 0.999 it errs high (a slightly more lenient
 * test) by 3% at df 1, 1.2% at df 5, 0.6% at df 10 and under 0.2% from
 * df 30 on.
 */
export function chiSquareQuantile(p: number, df: number): number {
  if (!(Number.isInteger(df) && df >= 1)) {
    throw new RangeError(
      `chiSquareQuantile: df must be a positive integer, got ${df}`,
    );
  }
  const v = 2 / (9 * df);
  const c = 1 - v + normalQuantile(p) * Math.sqrt(v);
  return df * c * c * c;
}

/**
 * Pearson's chi-square goodness of fit: observed counts against expected
 * counts (same total). Bins expected empty must be observed empty, or the
 * test fails outright; they add no degree of freedom. Other bins need an
 * expected count of at least 5 for the χ² approximation to hold; smaller
 * ones are refused (merge bins instead).
 */
export function chiSquareTest(
  observed: ArrayLike<number>,
  expected: ArrayLike<number>,
  alpha = ALPHA,
): TestResult {
  if (observed.length !== expected.length) {
    throw new RangeError(
      `chiSquareTest: ${observed.length} observed bins but ${expected.length} expected`,
    );
  }
  let statistic = 0, bins = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i], o = observed[i];
    if (e === 0) {
      if (o !== 0) statistic = Infinity;
      continue;
    }
    if (e < 5) {
      throw new RangeError(
        `chiSquareTest: bin ${i} expects ${e} < 5 counts; merge bins or draw more samples`,
      );
    }
    statistic += (o - e) ** 2 / e;
    bins++;
  }
  const df = Math.max(bins - 1, 1);
  const critical = chiSquareQuantile(1 - alpha, df);
  return {
    name: `chi-square (df ${df})`,
    statistic,
    critical,
    pass: statistic <= critical,
  };
}

/**
 * The Kolmogorov–Smirnov critical value for n samples at level alpha:
 * c(α) / (√n + 0.12 + 0.11/√n) with c(α) = sqrt(−ln(α/2) / 2), Stephens'
 * (1970) finite-n form of the asymptotic Kolmogorov distribution.
 */
export function ksCritical(n: number, alpha = ALPHA): number {
  const c = Math.sqrt(-Math.log(alpha / 2) / 2);
  const s = Math.sqrt(n);
  return c / (s + 0.12 + 0.11 / s);
}

/**
 * One-sample Kolmogorov–Smirnov test of `samples` against a continuous
 * CDF: D = sup |F_n(x) − F(x)|.
 */
export function ksTest(
  samples: ArrayLike<number>,
  cdf: (x: number) => number,
  alpha = ALPHA,
): TestResult {
  const n = samples.length;
  if (n === 0) throw new RangeError("ksTest: no samples");
  const sorted = Float64Array.from(samples).sort();
  let d = 0;
  for (let i = 0; i < n; i++) {
    const f = cdf(sorted[i]);
    d = Math.max(d, (i + 1) / n - f, f - i / n);
  }
  const critical = ksCritical(n, alpha);
  return {
    name: `Kolmogorov–Smirnov (n ${n})`,
    statistic: d,
    critical,
    pass: d <= critical,
  };
}

/**
 * Two-sided z-test: is `estimate` within the normal critical value of
 * `expected`, given the estimate's standard error?
 */
export function zTest(
  estimate: number,
  expected: number,
  standardError: number,
  alpha = ALPHA,
): TestResult {
  const z = (estimate - expected) / standardError;
  const critical = normalQuantile(1 - alpha / 2);
  return {
    name: "z",
    statistic: Math.abs(z),
    critical,
    pass: Math.abs(z) <= critical,
  };
}

/** Sample mean and (unbiased) variance. */
export function moments(
  xs: ArrayLike<number>,
): { mean: number; variance: number } {
  const n = xs.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += xs[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (xs[i] - mean) ** 2;
  return { mean, variance: ss / (n - 1) };
}

/**
 * z-tests of a sample's mean and variance against a distribution's mean,
 * variance and fourth central moment μ4: the standard errors are
 * sqrt(σ²/n) and sqrt((μ4 − σ⁴)/n) (large-n, central limit theorem).
 */
export function momentTests(
  xs: ArrayLike<number>,
  dist: { mean: number; variance: number; mu4: number },
  alpha = ALPHA,
): { mean: TestResult; variance: TestResult } {
  const n = xs.length;
  const m = moments(xs);
  const mean = zTest(m.mean, dist.mean, Math.sqrt(dist.variance / n), alpha);
  const variance = zTest(
    m.variance,
    dist.variance,
    Math.sqrt((dist.mu4 - dist.variance ** 2) / n),
    alpha,
  );
  return {
    mean: { ...mean, name: "z (mean)" },
    variance: { ...variance, name: "z (variance)" },
  };
}
