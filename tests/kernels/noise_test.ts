import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/noise.ts";
import { assertNmse, randomF32 } from "../helpers.ts";
import {
  assertPasses,
  assertRejects,
  chiSquareQuantile,
  chiSquareTest,
  ksCritical,
  ksTest,
  momentTests,
  normalCdf,
  normalQuantile,
  zTest,
} from "../stats.ts";

const rt = await Runtime.load();

/** A fresh 16-byte generator state in WASM memory. */
function wasmState(seedLo: number, seedHi: number) {
  const state = rt.array(Uint32Array, 4);
  rt.k.rng_seed(state.ptr, seedLo, seedHi);
  return state;
}

function twinState(seedLo: number, seedHi: number): Uint32Array {
  const state = new Uint32Array(4);
  ref.rng_seed(state, seedLo, seedHi);
  return state;
}

const SEEDS: [number, number][] = [
  [0, 0],
  [1, 0],
  [0, 1],
  [12345, 678],
  [0xffffffff, 0xffffffff],
  [0x9e3779b9, 0x7f4a7c15],
];

// --- the generator ---

Deno.test("xoshiro128**: the reference outputs from state {1, 2, 3, 4}", () => {
  // From Blackman and Vigna's xoshiro128starstar.c v1.1, as quoted in the
  // test of the Rust crate rand_xoshiro (Xoshiro128StarStar::reference).
  const want = [
    11520,
    0,
    5927040,
    70819200,
    2031721883,
    1637235492,
    1287239034,
    3734860849,
    3729100597,
    4258142804,
  ];
  const twin = new Uint32Array([1, 2, 3, 4]);
  assert.deepEqual(want.map(() => ref.rng_next_u32(twin)), want);
  const state = rt.arrayFrom(Uint32Array, [1, 2, 3, 4]);
  assert.deepEqual(want.map(() => rt.k.rng_next_u32(state.ptr) >>> 0), want);
  state.free();
});

Deno.test("SplitMix64 seeding: the reference outputs fill the state", () => {
  // From Vigna's splitmix64.c, as quoted in rand_xoshiro's SplitMix64 test.
  const seed = 1477776061723855037n;
  const want = [
    1985237415132408290n,
    2979275885539914483n,
    13511426838097143398n,
    8488337342461049707n,
  ];
  const sm: [bigint] = [seed];
  assert.deepEqual(want.map(() => ref.splitmix64(sm)), want);

  const lo = Number(seed & 0xffffffffn), hi = Number(seed >> 32n);
  const words = (a: bigint) => [Number(a & 0xffffffffn), Number(a >> 32n)];
  const expected = [...words(want[0]), ...words(want[1])];
  assert.deepEqual([...twinState(lo, hi)], expected);
  const state = wasmState(lo, hi);
  assert.deepEqual([...state.view], expected);
  state.free();
});

Deno.test("rng_next_u32: kernel and twin give the same stream", () => {
  for (const [lo, hi] of SEEDS) {
    const twin = twinState(lo, hi);
    const state = wasmState(lo, hi);
    for (let i = 0; i < 1000; i++) {
      assert.equal(rt.k.rng_next_u32(state.ptr) >>> 0, ref.rng_next_u32(twin));
    }
    assert.deepEqual(state.view, twin);
    state.free();
  }
});

Deno.test("rng: the same seed repeats its stream, different seeds differ", () => {
  const streams = SEEDS.map(([lo, hi]) => {
    const a = wasmState(lo, hi), b = wasmState(lo, hi);
    const xs = Array.from({ length: 64 }, () => rt.k.rng_next_u32(a.ptr) >>> 0);
    const ys = Array.from({ length: 64 }, () => rt.k.rng_next_u32(b.ptr) >>> 0);
    assert.deepEqual(xs, ys, `seed ${lo}, ${hi}`);
    a.free();
    b.free();
    return xs;
  });
  for (let i = 0; i < streams.length; i++) {
    for (let j = i + 1; j < streams.length; j++) {
      // Two independent 32-bit streams agree at a position with probability
      // 2⁻³²: any agreement in 64 draws means the seeds were not mixed.
      const same = streams[i].filter((x, t) => x === streams[j][t]).length;
      assert.equal(same, 0, `seeds ${SEEDS[i]} and ${SEEDS[j]}`);
    }
  }
});

// --- uniform ---

const N = 100_000;

Deno.test("rng_uniform_f32 equals the twin bit for bit, for any n", () => {
  for (const n of [0, 1, 2, 3, 5, 1000]) {
    const twin = twinState(7, 0);
    const want = new Float32Array(n);
    ref.rng_uniform_f32(twin, want, n);
    const state = wasmState(7, 0);
    const out = rt.array(Float32Array, n);
    rt.k.rng_uniform_f32(state.ptr, out.ptr, n);
    assert.deepEqual(out.view, want);
    assert.deepEqual(state.view, twin, "one u32 per value");
    state.free();
    out.free();
  }
});

function uniformSamples(seedLo: number, n = N): Float32Array {
  const state = wasmState(seedLo, 0);
  const out = rt.array(Float32Array, n);
  rt.k.rng_uniform_f32(state.ptr, out.ptr, n);
  const xs = out.view.slice();
  state.free();
  out.free();
  return xs;
}

Deno.test("rng_uniform_f32 is uniform on [0, 1): range, moments, bins, KS", () => {
  const xs = uniformSamples(2024);
  for (const x of xs) {
    assert.ok(x >= 0 && x < 1, `${x} outside [0, 1)`);
    assert.ok(Number.isInteger(x * 2 ** 24), `${x} is not a multiple of 2⁻²⁴`);
  }
  // U(0, 1): mean 1/2, variance 1/12, fourth central moment 1/80.
  const m = momentTests(xs, { mean: 0.5, variance: 1 / 12, mu4: 1 / 80 });
  assertPasses(m.mean, "uniform mean");
  assertPasses(m.variance, "uniform variance");
  const bins = new Array(100).fill(0);
  for (const x of xs) bins[Math.floor(x * 100)]++;
  assertPasses(chiSquareTest(bins, bins.map(() => N / 100)), "uniform bins");
  assertPasses(ksTest(xs, (x) => Math.min(Math.max(x, 0), 1)), "uniform KS");
});

// --- normal ---

Deno.test("rng_normal_f32 matches the twin and uses two u32 per pair", () => {
  for (
    const [n, mean, std] of [[0, 0, 1], [1, 0, 1], [2, 0, 1], [7, 3, 0.5], [
      1000,
      -1,
      2,
    ]]
  ) {
    const twin = twinState(99, 1);
    const want = new Float32Array(n);
    ref.rng_normal_f32(twin, want, n, mean, std);
    const state = wasmState(99, 1);
    const out = rt.array(Float32Array, n);
    rt.k.rng_normal_f32(state.ptr, out.ptr, n, mean, std);
    // The same uniforms go through Mathf's log/sqrt/cos/sin and the host's
    // correctly rounded ones: values agree to a few ULP.
    assertNmse(out.view, want, undefined, `normal n=${n}`);
    assert.deepEqual(state.view, twin, `normal n=${n}: 2·⌈n/2⌉ draws`);
    state.free();
    out.free();
  }
});

function normalSamples(
  seedLo: number,
  mean: number,
  std: number,
): Float32Array {
  const state = wasmState(seedLo, 0);
  const out = rt.array(Float32Array, N);
  rt.k.rng_normal_f32(state.ptr, out.ptr, N, mean, std);
  const xs = out.view.slice();
  state.free();
  out.free();
  return xs;
}

Deno.test("rng_normal_f32 is normal: moments and KS, standard and shifted", () => {
  for (const [seed, mean, std] of [[5, 0, 1], [6, 2.5, 0.3]]) {
    const xs = normalSamples(seed, mean, std);
    assert.ok(xs.every(Number.isFinite));
    // N(μ, σ²): fourth central moment 3σ⁴.
    const m = momentTests(xs, { mean, variance: std ** 2, mu4: 3 * std ** 4 });
    assertPasses(m.mean, `normal(${mean}, ${std}) mean`);
    assertPasses(m.variance, `normal(${mean}, ${std}) variance`);
    assertPasses(
      ksTest(xs, (x) => normalCdf((x - mean) / std)),
      `normal(${mean}, ${std}) KS`,
    );
  }
});

// --- categorical ---

function drawCategorical(
  p: Float32Array,
  draws: number,
  seedLo: number,
): Int32Array {
  const state = wasmState(seedLo, 0);
  const pa = rt.arrayFrom(Float32Array, p);
  const out = new Int32Array(draws);
  for (let i = 0; i < draws; i++) {
    out[i] = rt.k.rng_categorical_f32(state.ptr, pa.ptr, p.length);
  }
  state.free();
  pa.free();
  return out;
}

Deno.test("rng_categorical_f32 equals the twin draw for draw", () => {
  const p = randomF32(37, 3, 0, 1);
  p[5] = 0;
  const twin = twinState(11, 0);
  const got = drawCategorical(p, 2000, 11);
  for (let i = 0; i < got.length; i++) {
    assert.equal(
      got[i],
      ref.rng_categorical_f32(twin, p, p.length),
      `draw ${i}`,
    );
  }
});

function counts(draws: Int32Array, n: number): number[] {
  const c = new Array(n).fill(0);
  for (const d of draws) c[d]++;
  return c;
}

Deno.test("rng_categorical_f32 frequencies follow p (chi-square)", () => {
  // Unnormalised, with zeros inside and at the end: those are never drawn.
  const p = new Float32Array([0.5, 0, 3, 1, 2.5, 0.05, 0.7, 0, 0]);
  const draws = 40_000;
  const c = counts(drawCategorical(p, draws, 12), p.length);
  const total = p.reduce((s, v) => s + v, 0);
  const expected = [...p].map((v) => draws * v / total);
  assert.equal(c[1] + c[7] + c[8], 0, "zero-probability categories drawn");
  assertPasses(chiSquareTest(c, expected), "categorical");
});

Deno.test("rng_categorical_f32 over a 32000-token softmax (merged bins)", () => {
  const n = 32_000, draws = 4_000, binCount = 20;
  const logits = randomF32(n, 13, -4, 4);
  const max = Math.max(...logits);
  const p = logits.map((v) => Math.exp(v - max));
  // Bins of consecutive tokens, each expecting draws / binCount · (its mass).
  const binOf = (i: number) => Math.floor(i * binCount / n);
  const mass = new Array(binCount).fill(0);
  p.forEach((v, i) => mass[binOf(i)] += v);
  const total = mass.reduce((s, v) => s + v, 0);
  const got = new Array(binCount).fill(0);
  for (const d of drawCategorical(p, draws, 14)) got[binOf(d)]++;
  assertPasses(
    chiSquareTest(got, mass.map((m) => draws * m / total)),
    "categorical over 32000",
  );
});

Deno.test("rng_categorical_f32: a single category, and the last one", () => {
  assert.deepEqual([...drawCategorical(new Float32Array([2]), 5, 1)], [
    0,
    0,
    0,
    0,
    0,
  ]);
  const last = drawCategorical(new Float32Array([0, 0, 0, 1e-30]), 50, 2);
  assert.ok(last.every((i) => i === 3));
});

// --- the statistics themselves ---

Deno.test("stats: quantiles agree with published tables", () => {
  assert.ok(Math.abs(normalQuantile(0.975) - 1.959964) < 1e-4);
  assert.ok(Math.abs(normalQuantile(0.9995) - 3.290527) < 1e-4);
  assert.ok(Math.abs(normalCdf(1) - 0.8413447) < 1e-7);
  // χ² 0.999 quantiles (exact table values) and the documented relative
  // error of Wilson–Hilferty at each df.
  for (
    const [df, exact, bound] of [[5, 20.515, 0.013], [10, 29.588, 0.007], [
      99,
      148.230,
      0.002,
    ]]
  ) {
    const w = chiSquareQuantile(0.999, df);
    assert.ok(
      w >= exact && w / exact - 1 < bound,
      `df ${df}: ${w} vs ${exact}`,
    );
  }
  // Kolmogorov: c(0.001) = 1.9495, so about 1.9495/√n for large n.
  assert.ok(Math.abs(ksCritical(1e6) * 1000 - 1.9495) < 1e-3);
});

Deno.test("stats: the tests reject wrong distributions at these sample sizes", () => {
  const xs = uniformSamples(77);
  assertRejects(ksTest(xs, normalCdf), "uniform against normal");
  assertRejects(
    ksTest(xs, (x) => Math.min(Math.max(x, 0), 1) ** 1.05),
    "uniform against x^1.05",
  );
  const m = momentTests(xs, { mean: 0.505, variance: 1 / 12, mu4: 1 / 80 });
  assertRejects(m.mean, "uniform mean against 0.505");
  assertRejects(zTest(3.5, 0, 1), "z = 3.5");
  const bins = new Array(10).fill(0);
  for (const x of xs) bins[Math.floor(x * 10)]++;
  // A ±5% tilt across the bins: χ² ≈ 100 against a critical 27.9.
  const tilted = bins.map((_, i) => N / 10 * (1 + 0.05 * (i - 4.5) / 4.5));
  assertRejects(chiSquareTest(bins, tilted), "uniform bins against a tilt");
  assertRejects(
    chiSquareTest([30, 1], [31, 0]),
    "a draw where none was expected",
  );
  assert.throws(() => chiSquareTest([1, 1], [1, 1]), /merge bins/);
});
