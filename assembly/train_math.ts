// Vector math for the training kernels (not exported from the module): an
// f32x4 exp, so that GELU, SiLU and softmax over millions of activations per
// step do not run one scalar Mathf call at a time.
//
// exp: Cephes' expf, ported. x = n·ln2 + r with n = round(x·log2 e) and
// |r| ≤ ln2/2 (ln2 split in two parts so n·ln2 is exact), exp(r) by a
// degree-6 polynomial, then 2^n built in the exponent bits. Relative error
// ≈ 1e-7 for x in [−87.3, 88.7]; beyond, 0 and +inf as expf gives.

const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;

@inline
export function expf4(x: v128): v128 {
  const over = f32x4.gt(x, f32x4.splat(88.72));
  const under = f32x4.lt(x, f32x4.splat(-87.33));
  x = f32x4.max(f32x4.min(x, f32x4.splat(88.72)), f32x4.splat(-87.33));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  const y = f32x4.add(
    f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r),
    f32x4.splat(1),
  );
  // 2^n: n + 127 in the exponent field. n ∈ [−126, 128] after the clamp;
  // scale by 2^(n−1) twice so n = 128 does not overflow the exponent.
  const h = i32x4.trunc_sat_f32x4_s(f32x4.mul(n, f32x4.splat(0.5)));
  const pow1 = i32x4.shl(i32x4.add(h, i32x4.splat(127)), 23);
  const pow2 = i32x4.shl(
    i32x4.add(i32x4.sub(i32x4.trunc_sat_f32x4_s(n), h), i32x4.splat(127)),
    23,
  );
  let out = f32x4.mul(f32x4.mul(y, pow1), pow2);
  out = v128.bitselect(f32x4.splat(Infinity), out, over);
  return v128.andnot(out, under);
}

/** tanh(u) = 1 − 2 / (1 + exp(2u)), saturating to ±1. */
@inline
export function tanhf4(u: v128): v128 {
  const e = expf4(f32x4.add(u, u));
  return f32x4.sub(
    f32x4.splat(1),
    f32x4.div(f32x4.splat(2), f32x4.add(f32x4.splat(1), e)),
  );
}
