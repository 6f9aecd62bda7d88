import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/softmax.ts";
import { assertNmse, randomF32, testRng } from "../helpers.ts";

const rt = await Runtime.load();

/** Sizes around the SIMD width, plus a vocabulary-sized one. */
const SIZES = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 33, 257, 1001, 32000];

interface SoftmaxCase {
  n: number;
  temperature: number;
  /** Inputs are uniform in [-spread, spread). */
  spread: number;
  seed: number;
}

const SOFTMAX_CASES: SoftmaxCase[] = [
  ...SIZES.map((n, i) => ({ n, temperature: 1, spread: 10, seed: 100 + i })),
  { n: 513, temperature: 0.7, spread: 10, seed: 1 },
  { n: 513, temperature: 1.9, spread: 10, seed: 2 },
  // Small temperature: (x − max) / T is hugely negative for all but the top.
  { n: 99, temperature: 1e-3, spread: 10, seed: 3 },
  // Logits far from zero: only max subtraction keeps expf finite.
  { n: 64, temperature: 1, spread: 1e4, seed: 4 },
];

/** Runs a (out, x, n, t) kernel, in place or into a separate buffer. */
function runWasm(
  kernel: (out: number, x: number, n: number, t: number) => void,
  x: Float32Array,
  temperature: number,
  inPlace: boolean,
): Float32Array {
  const a = rt.arrayFrom(Float32Array, x);
  const o = inPlace ? a : rt.array(Float32Array, x.length);
  kernel(o.ptr, a.ptr, x.length, temperature);
  const result = o.view.slice();
  if (!inPlace) {
    // The input must be left as it was.
    assert.deepEqual(a.view, x);
    o.free();
  }
  a.free();
  return result;
}

Deno.test("softmax_f32 matches the twin", () => {
  for (const c of SOFTMAX_CASES) {
    const x = randomF32(c.n, c.seed, -c.spread, c.spread);
    const want = new Float32Array(c.n);
    ref.softmax_f32(want, x, c.n, c.temperature);
    for (const inPlace of [false, true]) {
      const got = runWasm(rt.k.softmax_f32, x, c.temperature, inPlace);
      assertNmse(got, want, undefined, `softmax ${JSON.stringify(c)}`);
      if (c.n > 0) {
        // Each term is within a few ULP; the sum of n of them within n·2⁻²³.
        const sum = got.reduce((s, v) => s + v, 0);
        assert.ok(Math.abs(sum - 1) < 1e-6 + c.n * 2 ** -23, `sum ${sum}`);
      }
    }
  }
});

Deno.test("log_softmax_f32 matches the twin", () => {
  for (const c of SOFTMAX_CASES) {
    const x = randomF32(c.n, c.seed, -c.spread, c.spread);
    const want = new Float32Array(c.n);
    ref.log_softmax_f32(want, x, c.n, c.temperature);
    for (const inPlace of [false, true]) {
      const got = runWasm(rt.k.log_softmax_f32, x, c.temperature, inPlace);
      assertNmse(got, want, undefined, `log_softmax ${JSON.stringify(c)}`);
      assert.ok(got.every(Number.isFinite), "log-probabilities are finite");
    }
  }
});

Deno.test("softmax: a NaN logit makes every output NaN, not a plausible distribution", () => {
  const x = randomF32(9, 5);
  x[6] = NaN;
  for (const kernel of [rt.k.softmax_f32, rt.k.log_softmax_f32]) {
    const got = runWasm(kernel, x, 1, false);
    assert.ok(got.every(Number.isNaN), `${[...got]}`);
  }
});

Deno.test("softmax: -inf logits get probability 0", () => {
  const x = new Float32Array([1, -Infinity, 2, -Infinity, 0.5]);
  const got = runWasm(rt.k.softmax_f32, x, 1, false);
  assert.equal(got[1], 0);
  assert.equal(got[3], 0);
  const want = new Float32Array(5);
  ref.softmax_f32(want, x, 5, 1);
  assertNmse(got, want);
});

Deno.test("softmax: a maximum in the scalar tail is subtracted too", () => {
  // Were it missed, expf(300 − 1) would overflow to inf and give NaN.
  for (
    const x of [[0, 300], [1, 2, 3, 4, 5, 300], [1, 2, 3, 4, 5, 6, 7, 300]]
  ) {
    const got = runWasm(rt.k.softmax_f32, new Float32Array(x), 1, false);
    const oneHot = x.map((_, i) => i === x.length - 1 ? 1 : 0);
    assert.deepEqual([...got], oneHot, `${x}`);
  }
});

interface ArgmaxCase {
  name: string;
  x: Float32Array;
}

function withValues(
  n: number,
  seed: number,
  set: Record<number, number>,
): Float32Array {
  const x = randomF32(n, seed);
  for (const [i, v] of Object.entries(set)) x[Number(i)] = v;
  return x;
}

const ARGMAX_CASES: ArgmaxCase[] = [
  ...SIZES.map((n, i) => ({ name: `random ${n}`, x: randomF32(n, 200 + i) })),
  { name: "tie, first wins", x: withValues(37, 1, { 9: 5, 30: 5 }) },
  { name: "tie inside one vector", x: withValues(8, 2, { 5: 5, 6: 5 }) },
  { name: "max in the tail", x: withValues(19, 3, { 18: 5 }) },
  { name: "max at 0", x: withValues(19, 4, { 0: 5 }) },
  { name: "NaN skipped", x: withValues(13, 5, { 2: NaN, 11: NaN, 7: 3 }) },
  { name: "NaN first", x: withValues(6, 6, { 0: NaN, 4: 2 }) },
  { name: "all NaN", x: new Float32Array(7).fill(NaN) },
  { name: "all -inf", x: new Float32Array(9).fill(-Infinity) },
  {
    name: "NaN then -inf",
    x: new Float32Array([NaN, NaN, NaN, NaN, -Infinity, NaN]),
  },
  { name: "+inf", x: withValues(21, 7, { 3: Infinity, 12: Infinity }) },
  { name: "all equal", x: new Float32Array(11).fill(0.25) },
];

Deno.test("argmax_f32 matches the twin", () => {
  for (const c of ARGMAX_CASES) {
    const a = rt.arrayFrom(Float32Array, c.x);
    const got = rt.k.argmax_f32(a.ptr, c.x.length);
    a.free();
    assert.equal(got, ref.argmax_f32(c.x, c.x.length), c.name);
  }
  assert.equal(ref.argmax_f32(new Float32Array(0), 0), -1);
});

/** Inputs with many exact ties: values on a coarse grid. */
function coarse(n: number, seed: number): Float32Array {
  const x = randomF32(n, seed, -3, 3);
  return x.map((v) => Math.round(v * 2) / 2);
}

interface TopkCase {
  name: string;
  x: Float32Array;
  k: number;
}

const TOPK_CASES: TopkCase[] = [
  ...SIZES.flatMap((n, i) =>
    [0, 1, 3, 4, 5, 40, n, n + 3].map((k) => ({
      name: `random n=${n} k=${k}`,
      x: randomF32(n, 300 + i),
      k,
    }))
  ),
  { name: "ties", x: coarse(203, 1), k: 50 },
  { name: "ties, all", x: coarse(97, 2), k: 97 },
  { name: "all equal", x: new Float32Array(30).fill(1), k: 7 },
  {
    name: "NaN last",
    x: withValues(25, 3, { 0: NaN, 4: NaN, 20: NaN }),
    k: 24,
  },
  { name: "NaN skipped", x: withValues(64, 4, { 0: NaN, 33: NaN }), k: 10 },
  {
    name: "infinities",
    x: withValues(40, 5, { 1: -Infinity, 9: Infinity, 30: Infinity }),
    k: 40,
  },
  // Ascending input: every value beats the heap root, the worst case.
  {
    name: "ascending",
    x: Float32Array.from({ length: 1000 }, (_, i) => i),
    k: 100,
  },
  { name: "-0 and 0 tie", x: new Float32Array([0, -0, 0, -0, 1]), k: 5 },
];

Deno.test("topk_f32 matches the twin", () => {
  for (const c of TOPK_CASES) {
    const n = c.x.length;
    const cap = Math.max(c.k, 1);
    const wantIdx = new Int32Array(cap), wantVal = new Float32Array(cap);
    const m = ref.topk_f32(wantIdx, wantVal, c.x, n, c.k);
    const x = rt.arrayFrom(Float32Array, c.x);
    const idx = rt.array(Int32Array, cap), val = rt.array(Float32Array, cap);
    const got = rt.k.topk_f32(idx.ptr, val.ptr, x.ptr, n, c.k);
    assert.equal(got, m, `${c.name}: count`);
    assert.deepEqual(idx.view.slice(0, m), wantIdx.slice(0, m), c.name);
    assert.deepEqual(val.view.slice(0, m), wantVal.slice(0, m), c.name);
    for (const a of [x, idx, val]) a.free();
  }
});

Deno.test("topk_f32 agrees with argmax and with repeated argmax", () => {
  const rand = testRng(9);
  const x = randomF32(500, 10);
  for (let i = 0; i < 40; i++) x[Math.floor(rand() * 500)] = 2; // ties at the top
  const a = rt.arrayFrom(Float32Array, x);
  const idx = rt.array(Int32Array, 8), val = rt.array(Float32Array, 8);
  rt.k.topk_f32(idx.ptr, val.ptr, a.ptr, 500, 8);
  assert.equal(idx.view[0], rt.k.argmax_f32(a.ptr, 500));
  // Knock out each winner in turn: argmax must name the next one.
  const copy = x.slice();
  for (let j = 0; j < 8; j++) {
    const best = ref.argmax_f32(copy, 500);
    assert.equal(idx.view[j], best);
    copy[best] = -Infinity;
  }
  for (const b of [a, idx, val]) b.free();
});
