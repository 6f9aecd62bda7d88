/**
 * Plain-TS twin of assembly/noise.ts: xoshiro128** seeded through
 * SplitMix64 (the algorithm, its authors and the state layout are described
 * there). The state is a Uint32Array of four words, like the kernel's 16
 * bytes; the u32 stream is the same bit for bit.
 */
const f32 = Math.fround;
const MASK64 = (1n << 64n) - 1n;
const GOLDEN_GAMMA = 0x9e3779b97f4a7c15n;

/** SplitMix64: advances `state[0]` (a u64 as a bigint) and returns the output. */
export function splitmix64(state: [bigint]): bigint {
  state[0] = (state[0] + GOLDEN_GAMMA) & MASK64;
  let z = state[0];
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

export function rng_seed(
  state: Uint32Array,
  seedLo: number,
  seedHi: number,
): void {
  const sm: [bigint] = [(BigInt(seedHi >>> 0) << 32n) | BigInt(seedLo >>> 0)];
  const a = splitmix64(sm), b = splitmix64(sm);
  state[0] = Number(a & 0xffffffffn);
  state[1] = Number(a >> 32n);
  state[2] = Number(b & 0xffffffffn);
  state[3] = Number(b >> 32n);
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** One xoshiro128** step; returns the output as an unsigned number. */
export function rng_next_u32(s: Uint32Array): number {
  const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
  const t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

export function rng_uniform_f32(
  state: Uint32Array,
  out: Float32Array,
  n: number,
): void {
  for (let i = 0; i < n; i++) out[i] = (rng_next_u32(state) >>> 8) / 2 ** 24;
}

/** Box–Muller, two u32 per pair of outputs (see the kernel). */
export function rng_normal_f32(
  state: Uint32Array,
  out: Float32Array,
  n: number,
  mean: number,
  std: number,
): void {
  const twoPi = f32(2 * Math.PI);
  const m = f32(mean), sd = f32(std);
  for (let i = 0; i < n; i += 2) {
    const u1 = ((rng_next_u32(state) >>> 8) + 1) / 2 ** 24;
    const u2 = (rng_next_u32(state) >>> 8) / 2 ** 24;
    const r = f32(Math.sqrt(f32(-2 * f32(Math.log(u1)))));
    const angle = f32(twoPi * u2);
    out[i] = f32(m + f32(sd * f32(r * f32(Math.cos(angle)))));
    if (i + 1 < n) {
      out[i + 1] = f32(m + f32(sd * f32(r * f32(Math.sin(angle)))));
    }
  }
}

/** Inverse-CDF draw over unnormalised p, in f64 like the kernel. */
export function rng_categorical_f32(
  state: Uint32Array,
  p: Float32Array,
  n: number,
): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i];
  const coin = rng_next_u32(state) / 2 ** 32 * sum;
  let cdf = 0;
  for (let i = 0; i < n; i++) {
    cdf += p[i];
    if (coin < cdf) return i;
  }
  return n - 1;
}
