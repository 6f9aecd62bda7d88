import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/f16.ts";
import { testRng } from "../helpers.ts";

const rt = await Runtime.load();

/** Runs f16_to_f32 over `halves`; returns the f32 results as bits. */
function wasmToF32(halves: Uint16Array): Uint32Array {
  const src = rt.arrayFrom(Uint16Array, halves);
  const out = rt.array(Uint32Array, halves.length + 1);
  out.view[halves.length] = 0xdeadbeef;
  rt.k.f16_to_f32(out.ptr, src.ptr, halves.length);
  const got = out.view.slice();
  assert.equal(got[halves.length], 0xdeadbeef, "wrote past n");
  src.free();
  out.free();
  return got.subarray(0, halves.length);
}

/** Runs f32_to_f16 over f32 bit patterns; returns the halves. */
function wasmToF16(f32bits: Uint32Array): Uint16Array {
  const src = rt.arrayFrom(Uint32Array, f32bits);
  const out = rt.array(Uint16Array, f32bits.length + 1);
  out.view[f32bits.length] = 0xbeef;
  rt.k.f32_to_f16(out.ptr, src.ptr, f32bits.length);
  const got = out.view.slice();
  assert.equal(got[f32bits.length], 0xbeef, "wrote past n");
  src.free();
  out.free();
  return got.subarray(0, f32bits.length);
}

function refToF16(f32bits: Uint32Array): Uint16Array {
  const out = new Uint16Array(f32bits.length);
  ref.f32_to_f16(out, new Float32Array(f32bits.buffer), f32bits.length);
  return out;
}

const hex = (v: number) => "0x" + v.toString(16);
const f32Of = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];

Deno.test("f16_to_f32: all 65536 halves, bit for bit against the twin and the platform", () => {
  const halves = new Uint16Array(65536).map((_, i) => i);
  const got = wasmToF32(halves);
  const want = new Uint32Array(65536);
  ref.f16_to_f32(new Float32Array(want.buffer), halves, 65536);
  // The platform's own binary16 (Float16Array) is a reference the twin does
  // not share code with.
  const platform = new Float16Array(halves.buffer);
  for (let h = 0; h < 65536; h++) {
    assert.equal(
      got[h],
      want[h],
      `half ${hex(h)}: ${hex(got[h])} vs twin ${hex(want[h])}`,
    );
    const value = f32Of(got[h]);
    if (Number.isNaN(platform[h])) {
      assert.ok(Number.isNaN(value), `half ${hex(h)} is NaN`);
    } else {assert.ok(
        Object.is(value, platform[h]),
        `half ${hex(h)}: ${value} vs ${platform[h]}`,
      );}
  }
});

Deno.test("f16_to_f32: all 65536 halves through the scalar tail too", () => {
  const halves = new Uint16Array(65536).map((_, i) => i);
  const src = rt.arrayFrom(Uint16Array, halves);
  const out = rt.array(Uint32Array, 65536);
  // Calls of 7 halves never reach the 8-wide SIMD body.
  for (let i = 0; i < 65536; i += 7) {
    rt.k.f16_to_f32(out.ptr + 4 * i, src.ptr + 2 * i, Math.min(7, 65536 - i));
  }
  const want = new Uint32Array(65536);
  ref.f16_to_f32(new Float32Array(want.buffer), halves, 65536);
  assert.deepEqual(out.view, want);
  src.free();
  out.free();
});

Deno.test("f32_to_f16 inverts f16_to_f32 for every half (NaNs stay NaN, made quiet)", () => {
  const halves = new Uint16Array(65536).map((_, i) => i);
  const back = wasmToF16(wasmToF32(halves));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    assert.equal(
      back[h],
      isNaN ? h | 0x200 : h,
      `half ${hex(h)} came back as ${hex(back[h])}`,
    );
  }
});

/** f32 bit patterns at every place rounding to f16 can go wrong. */
function edgeCases(): Uint32Array {
  const bitsOf = (v: number) =>
    new Uint32Array(new Float32Array([v]).buffer)[0];
  const values = [
    0,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    5 * 2 ** -26,
    2 ** -26,
    1e-45,
    1e-40,
    2 ** -14,
    2 ** -14 - 2 ** -25,
    2 ** -14 - 2 ** -26,
    1023 * 2 ** -24,
    1023.5 * 2 ** -24,
    1,
    1 + 2 ** -11,
    1 + 3 * 2 ** -11,
    1 + 2 ** -10,
    1 + 2 ** -11 + 2 ** -23,
    2048,
    2049,
    2051,
    65504,
    65519,
    65519.996,
    65520,
    65536,
    1e10,
    3.4028234663852886e38,
    Infinity,
    0.1,
    1 / 3,
    Math.PI,
  ];
  const out: number[] = [];
  for (const v of values) {
    for (const s of [v, -v]) {
      const b = bitsOf(s);
      // The value and its f32 neighbours on both sides.
      out.push(b, (b + 1) >>> 0, (b - 1) >>> 0);
    }
  }
  // NaNs: quiet and signalling, with payloads, both signs.
  out.push(
    0x7fc00000,
    0xffc00000,
    0x7f800001,
    0x7fbfffff,
    0x7fc02000,
    0xff812345,
  );
  // Every midpoint between two adjacent positive halves, and its neighbours.
  for (let h = 0; h < 0x7bff; h += 37) {
    const lo = f32Of(ref.halfToF32Bits(h)),
      hi = f32Of(ref.halfToF32Bits(h + 1));
    const mid = bitsOf((lo + hi) / 2);
    out.push(mid, mid + 1, mid - 1);
  }
  return new Uint32Array(out);
}

Deno.test("f32_to_f16: rounding edge cases match the twin and the platform", () => {
  const input = edgeCases();
  const got = wasmToF16(input);
  const want = refToF16(input);
  const platform = new Float16Array(input.length);
  platform.set(new Float32Array(input.buffer)); // the platform rounds f32 → f16
  const platformBits = new Uint16Array(platform.buffer);
  for (let i = 0; i < input.length; i++) {
    const what = `f32 ${hex(input[i])} (${f32Of(input[i])})`;
    assert.equal(
      got[i],
      want[i],
      `${what}: ${hex(got[i])} vs twin ${hex(want[i])}`,
    );
    const nan = (got[i] & 0x7c00) === 0x7c00 && (got[i] & 0x3ff) !== 0;
    if (Number.isNaN(f32Of(input[i]))) assert.ok(nan, `${what} must stay NaN`);
    else {assert.equal(
        got[i],
        platformBits[i],
        `${what}: vs platform ${hex(platformBits[i])}`,
      );}
  }
  // Alone, each value takes the scalar tail instead of the SIMD body.
  for (let i = 0; i < input.length; i++) {
    assert.equal(
      wasmToF16(input.subarray(i, i + 1))[0],
      want[i],
      `tail: f32 ${hex(input[i])}`,
    );
  }
  // Spot values, written out: ties go to even, 65520 is the first inf.
  const spot = (v: number) =>
    wasmToF16(new Uint32Array(new Float32Array([v]).buffer))[0];
  assert.equal(spot(2 ** -25), 0x0000); // halfway to the smallest subnormal: even is 0
  assert.equal(spot(3 * 2 ** -26), 0x0001);
  assert.equal(spot(1 + 2 ** -11), 0x3c00); // tie between 1 and 1 + 2^-10: even is 1
  assert.equal(spot(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(spot(65519), 0x7bff);
  assert.equal(spot(65520), 0x7c00);
  assert.equal(spot(-Infinity), 0xfc00);
  assert.equal(spot(-0), 0x8000);
});

Deno.test("f32_to_f16: random bit patterns and every tail length", () => {
  const rand = testRng(16);
  for (const n of [0, 1, 2, 7, 8, 9, 15, 16, 17, 100_003]) {
    const input = new Uint32Array(n).map(() => Math.floor(rand() * 2 ** 32));
    assert.deepEqual(wasmToF16(input), refToF16(input), `n = ${n}`);
    const halves = new Uint16Array(n).map(() => Math.floor(rand() * 65536));
    const want = new Uint32Array(n);
    ref.f16_to_f32(new Float32Array(want.buffer), halves, n);
    assert.deepEqual(wasmToF32(halves), want, `n = ${n}`);
  }
});
