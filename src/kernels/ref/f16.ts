/**
 * Plain-TS twins of assembly/f16.ts, written from the number format rather
 * than with the kernel's bit tricks: a half is (−1)^s · 2^(e−15) · (1 + m/1024),
 * or 2^−14 · m/1024 when e = 0, and e = 31 is inf (m = 0) or NaN.
 */

const bits = new Uint32Array(1);
const asF32 = new Float32Array(bits.buffer);

/** The f32 with these bits. */
function fromBits(b: number): number {
  bits[0] = b;
  return asF32[0];
}

/** The bits of f32 value `v`. */
function toBits(v: number): number {
  asF32[0] = v;
  return bits[0];
}

/** Nearest integer to x ≥ 0, ties to even. */
function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The f32 bits of one half. NaN keeps its payload, s | 0x7f800000 | m << 13
 * (bits, because a NaN passing through a JS number may be changed).
 */
export function halfToF32Bits(h: number): number {
  const s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  if (e === 31 && m !== 0) return ((s << 31) | 0x7f800000 | (m << 13)) >>> 0;
  const magnitude = e === 31
    ? Infinity
    : e === 0
    ? m * 2 ** -24
    : (1 + m / 1024) * 2 ** (e - 15);
  return toBits(s ? -magnitude : magnitude);
}

/**
 * The half nearest the f32 with bits `b`, ties to even; magnitudes from
 * 65520 (the midpoint between 65504 and 2^16) become inf. NaN becomes a
 * quiet NaN with the f32's top ten payload bits: 0x7e00 | (b >> 13) & 0x3ff.
 */
export function f32BitsToHalf(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const a = Math.abs(fromBits(b));
  if (Number.isNaN(a)) return sign | 0x7e00 | ((b >>> 13) & 0x3ff);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundEven(a * 2 ** 24); // 1024 = 2^-14, a normal
  let e = -14;
  while (a >= 2 ** (e + 1)) e++;
  let m = roundEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  return sign | ((e + 15) << 10) | m;
}

/** out[i] = src[i] (halves as u16 bits) for i < n. */
export function f16_to_f32(
  out: Float32Array,
  src: Uint16Array,
  n: number,
): void {
  const o = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < n; i++) o[i] = halfToF32Bits(src[i]);
}

/** out[i] = the half nearest src[i] for i < n. */
export function f32_to_f16(
  out: Uint16Array,
  src: Float32Array,
  n: number,
): void {
  const s = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < n; i++) out[i] = f32BitsToHalf(s[i]);
}
