import assert from "node:assert/strict";
import {
  candidatesFrom,
  draw,
  minP,
  repetitionPenalty,
  Sampler,
  samplingParams,
  softmax,
  temperature,
  topK,
  topP,
} from "../../src/sampling/sampler.ts";
import { SeerError } from "../../src/errors.ts";

// Four-token inputs, small enough to check by hand.
const LOGITS = [1, 3, 2, 0];

function probs(logits: number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function asMap(c: ReturnType<typeof candidatesFrom>): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < c.n; i++) m.set(c.ids[i], c.values[i]);
  return m;
}

Deno.test("sampler: softmax with temperature matches exp(l/T)/Σ", () => {
  const c = candidatesFrom(LOGITS);
  temperature(0.5).apply(c);
  softmax().apply(c);
  const want = probs(LOGITS.map((x) => x / 0.5));
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(c.values[i] - want[i]) < 1e-6);
});

Deno.test("sampler: top-k keeps the k largest, highest first", () => {
  const c = candidatesFrom(LOGITS);
  topK(2).apply(c);
  assert.deepEqual([...c.ids.subarray(0, c.n)], [1, 2]);
  const ties = candidatesFrom([5, 5, 5, 1]);
  topK(2).apply(ties);
  assert.deepEqual([...ties.ids.subarray(0, ties.n)], [0, 1]);
});

Deno.test("sampler: top-p keeps the smallest nucleus reaching p", () => {
  const p = probs(LOGITS); // ≈ [0.087, 0.644, 0.237, 0.032]
  const c = candidatesFrom(LOGITS);
  softmax().apply(c);
  topP(0.8).apply(c);
  assert.deepEqual([...c.ids.subarray(0, c.n)], [1, 2]);
  const s = p[1] + p[2];
  assert.ok(Math.abs(c.values[0] - p[1] / s) < 1e-6);
  const one = candidatesFrom(LOGITS);
  softmax().apply(one);
  topP(0.5).apply(one);
  assert.deepEqual([...one.ids.subarray(0, one.n)], [1]);
});

Deno.test("sampler: min-p drops tokens below p × max", () => {
  const c = candidatesFrom(LOGITS);
  softmax().apply(c);
  minP(0.3).apply(c); // max ≈ 0.644: keep ≥ 0.193 → ids 1, 2
  assert.deepEqual([...asMap(c).keys()].sort(), [1, 2]);
});

Deno.test("sampler: repetition penalty shrinks seen tokens both ways", () => {
  const step = repetitionPenalty(2, 64);
  step.accept!(1);
  step.accept!(3);
  const c = candidatesFrom([1, 3, 2, -1]);
  step.apply(c);
  assert.deepEqual([...c.values], [1, 1.5, 2, -2]);
  step.reset!();
  const d = candidatesFrom([1, 3, 2, -1]);
  step.apply(d);
  assert.deepEqual([...d.values], [1, 3, 2, -1]);
});

Deno.test("sampler: greedy is argmax; draw inverts the CDF", () => {
  const greedy = new Sampler({ temperature: 0 });
  assert.equal(greedy.sample(LOGITS, () => 0.99), 1);
  const s = new Sampler({ temperature: 1 });
  const c = s.distribution(LOGITS);
  const p = probs(LOGITS);
  // Order of ids in c is the input order (no sort needed without top-p).
  assert.equal(draw(c, 0), 0);
  assert.equal(draw(c, p[0] + 1e-6), 1);
  assert.equal(draw(c, p[0] + p[1] + 1e-6), 2);
  assert.equal(draw(c, 0.999999), 3);
});

Deno.test("sampler: out-of-range parameters name the field", () => {
  const bad: [string, number][] = [
    ["temperature", -1],
    ["temperature", NaN],
    ["topK", 1.5],
    ["topP", 0],
    ["topP", 1.5],
    ["minP", 1],
    ["repetitionPenalty", 0],
  ];
  for (const [field, value] of bad) {
    assert.throws(
      () => samplingParams({ [field]: value }),
      (e: unknown) =>
        e instanceof SeerError && e.code === "invalid_argument" &&
        e.message.startsWith(field),
    );
  }
});
