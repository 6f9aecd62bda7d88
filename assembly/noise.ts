// Seeded noise: a PRNG, uniform and normal fills, categorical draws.
// Contract: src/kernels/exports.ts; plain-TS twin: src/kernels/ref/noise.ts
// (which must produce the same u32 stream bit for bit).
//
// Generator: xoshiro128** 1.1 by David Blackman and Sebastiano Vigna
// ("Scrambled linear pseudorandom number generators", ACM TOMS 47(4), 2021;
// reference code at https://prng.di.unimi.it/). 128 bits of state as four
// u32 words s0..s3 at state+0, +4, +8, +12 (little-endian, as WASM stores
// them); period 2¹²⁸ − 1; each step:
//   result = rotl(s1 · 5, 7) · 9
//   t = s1 << 9; s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t;
//   s3 = rotl(s3, 11)
//
// Seeding: the 64-bit seed (seedHi << 32 | seedLo) goes through SplitMix64
// (Steele, Lea and Flood, OOPSLA 2014; the variant in Vigna's splitmix64.c),
// as the xoshiro authors recommend; its first two outputs a, b fill
// s0 = lo(a), s1 = hi(a), s2 = lo(b), s3 = hi(b). SplitMix64's output
// function is a bijection, so a and b are never both zero and the state
// is never the all-zero one xoshiro cannot leave.

let s0: u32 = 0;
let s1: u32 = 0;
let s2: u32 = 0;
let s3: u32 = 0;

// @ts-ignore: decorator
@inline
function loadState(state: usize): void {
  s0 = load<u32>(state);
  s1 = load<u32>(state, 4);
  s2 = load<u32>(state, 8);
  s3 = load<u32>(state, 12);
}

// @ts-ignore: decorator
@inline
function saveState(state: usize): void {
  store<u32>(state, s0);
  store<u32>(state, s1, 4);
  store<u32>(state, s2, 8);
  store<u32>(state, s3, 12);
}

/** One xoshiro128** step on the loaded state. */
// @ts-ignore: decorator
@inline
function next(): u32 {
  const result = rotl<u32>(s1 * 5, 7) * 9;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl<u32>(s3, 11);
  return result;
}

/** SplitMix64's output function on an already advanced counter. */
// @ts-ignore: decorator
@inline
function mix64(z: u64): u64 {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
  z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
  return z ^ (z >> 31);
}

/** SplitMix64's increment, the golden ratio times 2⁶⁴. */
const GOLDEN_GAMMA: u64 = 0x9e3779b97f4a7c15;

/** 2⁻²⁴: turns the top 24 bits of a u32 into [0, 1) exactly. */
const TWO_POW_M24: f32 = 5.9604644775390625e-8;
const TWO_PI: f32 = 6.2831853071795864769;

/** Seeds the 16-byte xoshiro128** state from a 64-bit seed via SplitMix64. */
export function rng_seed(state: usize, seedLo: u32, seedHi: u32): void {
  const x = (<u64> seedHi << 32) | <u64> seedLo;
  const a = mix64(x + GOLDEN_GAMMA);
  const b = mix64(x + 2 * GOLDEN_GAMMA);
  s0 = <u32> a;
  s1 = <u32> (a >> 32);
  s2 = <u32> b;
  s3 = <u32> (b >> 32);
  saveState(state);
}

/** The next 32 bits of the stream (JS sees them as an i32: use `>>> 0`). */
export function rng_next_u32(state: usize): u32 {
  loadState(state);
  const r = next();
  saveState(state);
  return r;
}

/**
 * n floats uniform in [0, 1): the top 24 bits of one u32 each, times 2⁻²⁴,
 * so every value is a multiple of 2⁻²⁴ and exactly representable.
 */
export function rng_uniform_f32(state: usize, out: usize, n: i32): void {
  loadState(state);
  for (let i = 0; i < n; i++) {
    store<f32>(out + (<usize> i << 2), <f32> (next() >> 8) * TWO_POW_M24);
  }
  saveState(state);
}

/**
 * n normal floats mean + std · z by the Box–Muller transform: two u32 give
 * u1 = (top24 + 1) · 2⁻²⁴ in (0, 1] (never log 0) and u2 = top24 · 2⁻²⁴ in
 * [0, 1), then z0 = r·cos(2πu2) and z1 = r·sin(2πu2) with
 * r = sqrt(−2 ln u1). Each pair of outputs uses two u32; an odd last
 * output also uses two and keeps z0. Since u1 ≥ 2⁻²⁴, |z| ≤ 5.77: the
 * tails beyond carry probability 8e-9 and are cut off.
 */
export function rng_normal_f32(
  state: usize,
  out: usize,
  n: i32,
  mean: f32,
  std: f32,
): void {
  loadState(state);
  for (let i = 0; i < n; i += 2) {
    const u1 = <f32> ((next() >> 8) + 1) * TWO_POW_M24;
    const u2 = <f32> (next() >> 8) * TWO_POW_M24;
    const r = Mathf.sqrt(<f32> -2 * Mathf.log(u1));
    const angle = TWO_PI * u2;
    const p = out + (<usize> i << 2);
    store<f32>(p, mean + std * (r * Mathf.cos(angle)));
    if (i + 1 < n) store<f32>(p, mean + std * (r * Mathf.sin(angle)), 4);
  }
  saveState(state);
}

/**
 * Draws index i with probability p[i] / Σp (p ≥ 0, unnormalised) by
 * inverting the CDF with one u32. Sums and the coin are f64: the coin
 * u · 2⁻³² · Σp is then strictly below Σp, and the running CDF, summed in
 * the same order, ends at exactly Σp, so some i with p[i] > 0 is always
 * found when 0 < Σp < ∞. The n − 1 fallback is reached only when rounding
 * cannot be trusted: Σp = 0, infinite or NaN (the TS entry rejects those).
 */
export function rng_categorical_f32(state: usize, p: usize, n: i32): i32 {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) sum += <f64> load<f32>(p + (<usize> i << 2));
  loadState(state);
  const coin = <f64> next() * 2.3283064365386963e-10 * sum; // 2⁻³²
  saveState(state);
  let cdf: f64 = 0;
  for (let i = 0; i < n; i++) {
    cdf += <f64> load<f32>(p + (<usize> i << 2));
    if (coin < cdf) return i;
  }
  return n - 1;
}
