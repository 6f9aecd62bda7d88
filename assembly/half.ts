// IEEE 754 binary16 ↔ binary32 conversion, scalar and four lanes at a time,
// shared by f16.ts and q8.ts (q8_0 stores its block scales as halves). Not
// re-exported by index.ts: these are helpers, not kernels.

/** 2^112 (bits 0x77800000): the f32 and f16 exponent biases differ by 127 − 15. */
export const F16_RESCALE: f32 = 5.192296858534828e33;
/** 2^24 (bits 0x4b800000): the smallest f16 subnormal, 2^-24, becomes 1. */
export const F16_SUBNORMAL_UNITS: f32 = 16777216;

/** The f32 equal to the half whose bits are the low 16 of `h` (exact). */
// @ts-ignore: decorator
@inline
export function halfToF32(h: u32): f32 {
  const e = h & 0x7fff;
  // Exponent and mantissa shifted into f32 position read as the value
  // times 2^-112; scaling by 2^112 is exact for normal and subnormal halves.
  const finite = reinterpret<u32>(reinterpret<f32>(e << 13) * F16_RESCALE);
  // Exponent 31 is inf or NaN: all-ones f32 exponent, the mantissa kept.
  const bits = e >= 0x7c00 ? (e << 13) | 0x7f800000 : finite;
  return reinterpret<f32>(bits | ((h & 0x8000) << 16));
}

/**
 * The half nearest to `f` (ties to even), as bits in the low 16: beyond the
 * largest half (65504) rounds to ±inf from 65520 on, NaN stays a quiet NaN.
 */
// @ts-ignore: decorator
@inline
export function f32ToHalf(f: f32): u32 {
  const x = reinterpret<u32>(f);
  const a = x & 0x7fffffff;
  let h: u32;
  if (a >= 0x38800000) {
    // |f| ≥ 2^-14, a normal half: rebias the exponent (−112 << 23) and round
    // the 13 dropped mantissa bits to nearest even. A carry into the
    // exponent is the right answer; past 65504 it reaches inf (0x7c00).
    h = min<u32>((a - 0x38000000 + 0xfff + ((a >>> 13) & 1)) >>> 13, 0x7c00);
    if (a > 0x7f800000) h = 0x7e00 | ((a >>> 13) & 0x3ff);
  } else {
    // Subnormal half or zero: count units of 2^-24, rounding ties to even.
    // The product is exact (a power-of-two scale of a value below 2^-14).
    h = <u32>nearest<f32>(reinterpret<f32>(a) * F16_SUBNORMAL_UNITS);
  }
  return ((x >>> 16) & 0x8000) | h;
}

/** halfToF32 for four halves, each in the low 16 bits of a 32-bit lane. */
// @ts-ignore: decorator
@inline
export function halvesToF32(h: v128): v128 {
  const e = v128.and(h, i32x4.splat(0x7fff));
  const shifted = i32x4.shl(e, 13);
  const finite = f32x4.mul(shifted, f32x4.splat(F16_RESCALE));
  const special = v128.or(shifted, i32x4.splat(0x7f800000));
  const bits = v128.bitselect(
    special,
    finite,
    i32x4.ge_u(e, i32x4.splat(0x7c00)),
  );
  return v128.or(bits, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

