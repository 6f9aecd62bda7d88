/**
 * Speculative sampling must leave the output distribution exactly that of
 * plain sampling. On the built-in model, the first two generated tokens of
 * 10,000 seeded runs are binned as pairs and compared by Pearson's
 * chi-square with the exact distribution plain sampling draws from (the
 * target's p for token 1 times p for token 2 given it, computed by running
 * the model on every possible first token). The threshold is the
 * chi-square quantile at α = 0.001 (tests/stats.ts), never tuned. A plain
 * sampling control must pass, and a deliberately broken acceptance rule
 * must fail the same test.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { readModelFile } from "../../src/formats/load.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { ArDecoder } from "../../src/generate/ar.ts";
import type { Decoder } from "../../src/generate/decoder.ts";
import { ModelDrafter } from "../../src/generate/drafters.ts";
import { JacobiDrafter } from "../../src/generate/nar.ts";
import {
  acceptOrResample,
  type AcceptRule,
  type Drafter,
  Policy,
  SpeculativeDecoder,
} from "../../src/generate/speculative.ts";
import {
  draw,
  Sampler,
  type SamplingParams,
} from "../../src/sampling/sampler.ts";
import { Rng } from "../../src/sampling/rng.ts";
import { assertPasses, assertRejects, chiSquareTest } from "../stats.ts";
import { F16_DRAFT } from "./speculative_fixtures.ts";

const RUNS = 10_000;
const engine = await Engine.load();
const PROMPT = engine.encode("Lily wanted to");
const draftFile = await readModelFile(F16_DRAFT);

/** P(first two generated tokens = a, b) under plain sampling, keyed a * V + b. */
function exactPairs(sampling: Partial<SamplingParams>): Map<number, number> {
  const model = engine.model.fork();
  const policy = new Policy(sampling);
  const n = PROMPT.length;
  const V = model.config.vocabSize;
  const p1 = policy.distribution(model.forwardBatch(PROMPT, 0), PROMPT);
  const out = new Map<number, number>();
  for (let i = 0; i < p1.n; i++) {
    const a = p1.ids[i];
    const p2 = policy.distribution(model.forward(a, n), PROMPT, [a]);
    for (let j = 0; j < p2.n; j++) {
      out.set(a * V + p2.ids[j], p1.values[i] * p2.values[j]);
    }
  }
  model.dispose();
  return out;
}

/** Generates two tokens per run with one decoder, reused across runs. */
function samplePairs(decoder: Decoder): Int32Array {
  const n = PROMPT.length;
  const V = engine.model.config.vocabSize;
  const out = new Int32Array(RUNS);
  for (let r = 0; r < RUNS; r++) {
    decoder.prefill(PROMPT);
    const ctx = [...PROMPT];
    while (ctx.length < n + 2) {
      ctx.push(...decoder.next(ctx, n + 2 - ctx.length));
    }
    out[r] = ctx[n] * V + ctx[n + 1];
  }
  return out;
}

/**
 * Chi-square of sampled pairs against the exact distribution. Cells
 * expecting fewer than 5 counts are pooled into one bin (folded into the
 * smallest bin if the pool itself is that small); a pair the target cannot
 * produce gets a bin expecting 0, which fails the test outright.
 */
function pairTest(samples: Int32Array, exact: Map<number, number>) {
  const N = samples.length;
  const binOf = new Map<number, number>();
  const expected: number[] = [];
  let pooled = 0;
  const pooledCells: number[] = [];
  for (const [cell, p] of exact) {
    if (p * N >= 5) {
      binOf.set(cell, expected.length);
      expected.push(p * N);
    } else {
      pooled += p * N;
      pooledCells.push(cell);
    }
  }
  let poolBin = expected.length;
  if (pooled >= 5) expected.push(pooled);
  else {
    poolBin = expected.indexOf(Math.min(...expected));
    expected[poolBin] += pooled;
  }
  for (const c of pooledCells) binOf.set(c, poolBin);
  const impossible = expected.length;
  expected.push(0);
  const observed = new Array(expected.length).fill(0);
  for (const s of samples) observed[binOf.get(s) ?? impossible]++;
  return chiSquareTest(observed, expected);
}

function speculative(
  sampling: Partial<SamplingParams>,
  makeDrafter: (coin: () => number) => Drafter,
  k: number,
  rule?: AcceptRule,
) {
  const target = engine.model.fork();
  const rng = new Rng(engine.rt, 2024);
  const coin = () => rng.uniform();
  const decoder = new SpeculativeDecoder(
    target,
    makeDrafter(coin),
    new Sampler(sampling),
    coin,
    { k, adaptive: false, rule, stopTokens: engine.stopTokens },
  );
  const samples = samplePairs(decoder);
  const stats = decoder.stats();
  decoder.dispose();
  target.dispose();
  rng.dispose();
  return { samples, stats };
}

/** A separate model drafting with other sampling parameters than the target's. */
function modelDrafter(draftSampling: Partial<SamplingParams>) {
  return (coin: () => number) => {
    const m = LlamaModel.load(engine.rt, draftFile);
    const drafter = new ModelDrafter(
      "model",
      m,
      new Policy(draftSampling),
      coin,
      1,
    );
    return Object.assign(drafter, { dispose: () => m.dispose() });
  };
}

/** The classic bug: on rejection, draw from p instead of normalize(max(0, p − q)). */
const resampleFromP: AcceptRule = (p, q, d, coin, scratch) => {
  const r = acceptOrResample(p, q, d, coin, scratch);
  return r.accepted ? r : { token: draw(p, coin()), accepted: false };
};

const T1 = { temperature: 1 };
const TOP_P = { temperature: 1, topP: 0.9 };
// Hotter and unfiltered: q puts mass where p is small, or (with top-p) zero.
const HOT = { temperature: 1.6 };

Deno.test("distribution: plain sampling matches the exact pair distribution (control)", () => {
  const target = engine.model.fork();
  const rng = new Rng(engine.rt, 7);
  const decoder = new ArDecoder(target, new Sampler(T1), () => rng.uniform());
  assertPasses(pairTest(samplePairs(decoder), exactPairs(T1)), "plain, T=1");
  target.dispose();
  rng.dispose();
});

Deno.test("distribution: speculative sampling = plain, T=1, model drafter, k=1", () => {
  const { samples, stats } = speculative(T1, modelDrafter(HOT), 1);
  // Both the rejection and the bonus-token paths were exercised.
  assert.ok(
    stats.acceptance_rate > 0.2 && stats.acceptance_rate < 0.95,
    `${stats.acceptance_rate}`,
  );
  assertPasses(pairTest(samples, exactPairs(T1)), "speculative, T=1, k=1");
});

Deno.test("distribution: speculative sampling = plain, top-p 0.9, model drafter, k=3", () => {
  const { samples, stats } = speculative(TOP_P, modelDrafter(HOT), 3);
  assert.ok(
    stats.acceptance_rate > 0.2 && stats.acceptance_rate < 0.95,
    `${stats.acceptance_rate}`,
  );
  assertPasses(
    pairTest(samples, exactPairs(TOP_P)),
    "speculative, top-p 0.9, k=3",
  );
});

Deno.test("distribution: speculative sampling = plain, T=1, Jacobi guesses (one-hot q)", () => {
  const { samples, stats } = speculative(T1, () => new JacobiDrafter(), 3);
  assert.ok(stats.accepted_tokens > 0);
  assertPasses(pairTest(samples, exactPairs(T1)), "jacobi, T=1");
});

Deno.test("distribution: a broken acceptance rule fails the same test (test of the test)", () => {
  const { samples } = speculative(T1, modelDrafter(HOT), 1, resampleFromP);
  assertRejects(pairTest(samples, exactPairs(T1)), "resampling from p");
});
