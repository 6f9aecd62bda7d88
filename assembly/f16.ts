// IEEE 754 binary16 ↔ binary32 for arrays: f16 weights and caches in, f32
// math out. Contract: src/kernels/exports.ts; plain-TS twin:
// src/kernels/ref/f16.ts.
//
// Both directions are exact integer bit manipulation (see half.ts for the
// scalar form, used for the tails): every half is an f32, and f32 → f16
// rounds to nearest, ties to even. Eight halves per iteration; the lanes
// take both branches and a mask picks, so the loop has none.

import {
  F16_SUBNORMAL_UNITS,
  f32ToHalf,
  halfToF32,
  halvesToF32,
} from "./half";

/** Four f32 as four halves in the low 16 bits of u32 lanes. */
// @ts-ignore: decorator
@inline
function f32ToHalves(x: v128): v128 {
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  const lsb = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  const rounded = i32x4.add(
    i32x4.sub(a, i32x4.splat(0x38000000 - 0xfff)),
    lsb,
  );
  const normal = i32x4.min_u(
    i32x4.shr_u(rounded, 13),
    i32x4.splat(0x7c00),
  );
  const nan = v128.or(
    v128.and(i32x4.shr_u(a, 13), i32x4.splat(0x3ff)),
    i32x4.splat(0x7e00),
  );
  const sub = i32x4.trunc_sat_f32x4_u(
    f32x4.nearest(f32x4.mul(a, f32x4.splat(F16_SUBNORMAL_UNITS))),
  );
  let h = v128.bitselect(normal, sub, i32x4.ge_u(a, i32x4.splat(0x38800000)));
  h = v128.bitselect(nan, h, i32x4.gt_u(a, i32x4.splat(0x7f800000)));
  return v128.or(h, v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000)));
}

/** out[i] = src[i] for n halves in, n floats out. */
export function f16_to_f32(out: usize, src: usize, n: i32): void {
  const end8 = src + (<usize>(n & ~7) << 1);
  while (src < end8) {
    const h = v128.load(src);
    v128.store(out, halvesToF32(i32x4.extend_low_i16x8_u(h)));
    v128.store(out, halvesToF32(i32x4.extend_high_i16x8_u(h)), 16);
    src += 16;
    out += 32;
  }
  for (let i = 0; i < (n & 7); i++) {
    store<f32>(out + (<usize>i << 2), halfToF32(load<u16>(src + (<usize>i << 1))));
  }
}

/** out[i] = the half nearest src[i] (ties to even, ±inf past 65504, NaN kept). */
export function f32_to_f16(out: usize, src: usize, n: i32): void {
  const end8 = src + (<usize>(n & ~7) << 2);
  while (src < end8) {
    const lo = f32ToHalves(v128.load(src));
    const hi = f32ToHalves(v128.load(src, 16));
    v128.store(out, i16x8.narrow_i32x4_u(lo, hi));
    src += 32;
    out += 16;
  }
  for (let i = 0; i < (n & 7); i++) {
    store<u16>(out + (<usize>i << 1), f32ToHalf(load<f32>(src + (<usize>i << 2))));
  }
}
