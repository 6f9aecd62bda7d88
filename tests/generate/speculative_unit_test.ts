/**
 * The pieces of speculative decoding on small inputs: the acceptance rule
 * on 4-token distributions, adaptive k, prompt lookup, the Jacobi and
 * lookahead guesses, the penalty-aware policy, and option checking.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { SeerError } from "../../src/errors.ts";
import { NgramDrafter } from "../../src/generate/drafters.ts";
import { JacobiDrafter, LookaheadDrafter } from "../../src/generate/nar.ts";
import {
  acceptOrResample,
  AdaptiveK,
  Dense,
  Policy,
  PROBE_AFTER,
  type Verdict,
} from "../../src/generate/speculative.ts";
import {
  loadSpeculative,
  type SpeculativeSpec,
} from "../../src/generate/setup.ts";
import { type Candidates, Sampler } from "../../src/sampling/sampler.ts";
import { assertPasses, chiSquareTest } from "../stats.ts";
import { testRng } from "../helpers.ts";

function dist(probs: number[]): Candidates {
  const ids = Int32Array.from(probs.keys()).filter((i) => probs[i] > 0);
  return {
    ids,
    values: Float32Array.from(ids, (i) => probs[i]),
    n: ids.length,
    probs: true,
    sorted: false,
  };
}

/** Emitted-token counts of the rule over `n` drafts d ~ q (q null: d fixed). */
function emitted(
  p: number[],
  q: number[] | null,
  d0: number,
  n: number,
  seed: number,
) {
  const rand = testRng(seed);
  const counts = new Array(p.length).fill(0);
  const P = dist(p);
  const Q = q ? dist(q) : null;
  const scratch = new Dense(p.length);
  for (let i = 0; i < n; i++) {
    let d = d0;
    if (q) {
      let u = rand(), j = 0;
      while (j < q.length - 1 && u >= q[j]) u -= q[j++];
      d = j;
    }
    counts[acceptOrResample(P, Q, d, rand, scratch).token]++;
  }
  // The scratch is left clean for the next position.
  assert.ok(scratch.values.every((v) => v === 0));
  return counts;
}

Deno.test("accept rule: emitted tokens follow p whatever q is (4 tokens)", () => {
  const N = 40_000;
  const cases: [string, number[], number[] | null, number][] = [
    ["q close to p", [0.1, 0.6, 0.2, 0.1], [0.2, 0.5, 0.2, 0.1], 0],
    ["q far from p", [0.05, 0.05, 0.3, 0.6], [0.7, 0.1, 0.1, 0.1], 0],
    ["q outside p's support", [0.5, 0.5, 0, 0], [0.1, 0.1, 0.4, 0.4], 0],
    ["q one-hot on a likely token", [0.1, 0.6, 0.2, 0.1], null, 1],
    ["q one-hot on an unlikely token", [0.1, 0.6, 0.2, 0.1], null, 3],
    ["p one-hot", [0, 0, 1, 0], [0.25, 0.25, 0.25, 0.25], 0],
  ];
  for (const [name, p, q, d] of cases) {
    const counts = emitted(p, q, d, N, name.length);
    const keep = p.map((x, i) => [x * N, counts[i]]).filter(([e]) => e > 0);
    for (let i = 0; i < p.length; i++) {
      if (p[i] === 0) {
        assert.equal(counts[i], 0, `${name}: token ${i} has p = 0`);
      }
    }
    if (keep.length > 1) {
      assertPasses(
        chiSquareTest(keep.map(([, o]) => o), keep.map(([e]) => e)),
        name,
      );
    }
  }
});

Deno.test("accept rule: certain acceptance uses no coin", () => {
  let coins = 0;
  const r = acceptOrResample(
    dist([0.1, 0.7, 0.1, 0.1]),
    dist([0.2, 0.5, 0.2, 0.1]),
    1,
    () => (coins++, 0.5),
    new Dense(4),
  );
  assert.deepEqual(r, { token: 1, accepted: true });
  assert.equal(coins, 0);
});

Deno.test("adaptive k: long drafts when acceptance is high and drafting cheap", () => {
  const high = new AdaptiveK(8, 0.01, 0.05);
  for (let i = 0; i < 30; i++) high.update(8, 8);
  assert.ok(high.alpha > 0.95);
  assert.equal(high.best(), 8);
  assert.equal(high.best(3), 3, "never beyond the limit");

  const low = new AdaptiveK(8, 0.01, 0.05);
  for (let i = 0; i < 30; i++) low.update(0, 4);
  assert.ok(low.alpha < 0.05);
  assert.equal(low.best(), 1);

  // Expensive drafts shorten k at the same acceptance.
  const cheap = new AdaptiveK(8, 0.01, 0.1);
  const dear = new AdaptiveK(8, 0.5, 0.1);
  for (let i = 0; i < 30; i++) {
    cheap.update(3, 4);
    dear.update(3, 4);
  }
  assert.ok(dear.best() < cheap.best(), `${dear.best()} < ${cheap.best()}`);
  // E(k) = (1 − α^(k+1)) / (1 − α) tokens per pass, over the cost.
  const a = cheap.alpha;
  assert.ok(
    Math.abs(cheap.value(2) - (1 + a + a * a) / (1 + 0.11 * 2)) < 1e-12,
  );
});

Deno.test("adaptive k: plain steps while no k pays, with a probe now and then", () => {
  const t = new AdaptiveK(8, 0.5, 0.35);
  for (let i = 0; i < 30; i++) t.update(0, 1);
  // Even k = 1 costs 1.85 steps for about 1 token: draft nothing...
  const ks = Array.from({ length: 2 * (PROBE_AFTER + 1) }, () => t.decide());
  // ...except one probe after PROBE_AFTER plain steps.
  const probes = ks.flatMap((k, i) => (k > 0 ? [i] : []));
  assert.deepEqual(probes, [PROBE_AFTER, 2 * PROBE_AFTER + 1]);
  assert.equal(ks[PROBE_AFTER], 1);
  // A drafter that pays is used every step.
  const good = new AdaptiveK(8, 0.05, 0.35);
  for (let i = 0; i < 30; i++) good.update(4, 4);
  assert.ok(Array.from({ length: 5 }, () => good.decide()).every((k) => k > 1));
});

Deno.test("adaptive k: forgetting drifts back to the prior", () => {
  const t = new AdaptiveK(8, 0, 0.1, 0.5);
  for (let i = 0; i < 20; i++) t.update(0, 4);
  const before = t.alpha;
  for (let i = 0; i < 200; i++) t.forget(0.05);
  assert.ok(
    before < 0.1 && Math.abs(t.alpha - 0.5) < 0.01,
    `${before} → ${t.alpha}`,
  );
});

Deno.test("ngram: proposes what followed the latest match, longest n first", () => {
  const ngram = new NgramDrafter(3);
  // "5 6 7" occurred before, followed by 8 9; "6 7" also later, followed by 4.
  const ctx = [1, 5, 6, 7, 8, 9, 2, 6, 7, 4, 3, 5, 6, 7];
  assert.deepEqual(ngram.propose(ctx, 2).tokens, [8, 9]);
  // Only a 1-gram matches: the latest earlier 3 was followed by 5.
  assert.deepEqual(new NgramDrafter(3).propose([1, 3, 5, 2, 3], 2).tokens, [
    5,
    2,
  ]);
  // Copying runs into the draft itself: a repeating pattern continues.
  assert.deepEqual(ngram.propose([1, 4, 5, 4, 5], 5).tokens, [4, 5, 4, 5, 4]);
  assert.deepEqual(ngram.propose([1, 2, 3], 4).tokens, []);
  assert.deepEqual(
    new NgramDrafter(2, 2).propose([1, 3, 5, 2, 3], 2).tokens,
    [],
  );
  const q = ngram.propose(ctx, 2).q;
  assert.deepEqual(q, [null, null], "deterministic: q is one-hot");
});

/** A verdict whose rows predict `pred[i]` after batch row i. */
function verdict(
  start: number,
  batch: number[],
  pred: number[],
  contextLength: number,
  emitted: number[],
): Verdict {
  const vocab = 16;
  const logits = new Float32Array(batch.length * vocab);
  pred.forEach((t, i) => (logits[i * vocab + t] = 1));
  return {
    start,
    batch,
    logits,
    vocab,
    contextLength,
    drafted: batch.length - 1,
    accepted: emitted.length - 1,
    emitted,
  };
}

Deno.test("jacobi: predictions past the accepted prefix become the next guesses", () => {
  const j = new JacobiDrafter();
  const ctx = [1, 9];
  // Nothing known yet: pad with the last token.
  assert.deepEqual(j.propose(ctx, 3).tokens, [9, 9, 9]);
  // The target ran [9, 9, 9, 9] at positions 1..4 and predicted 4, 5, 6, 7
  // for positions 2..5; the guess 9 at 2 ≠ 4, so only 4 was emitted. The
  // predictions for 3..5 are the next guesses; position 6 is padded.
  j.observe(verdict(1, [9, 9, 9, 9], [4, 5, 6, 7], 2, [4]));
  assert.deepEqual(j.propose([1, 9, 4], 4).tokens, [5, 6, 7, 7]);
});

Deno.test("lookahead: n-grams from the Jacobi diagonals lead the window", () => {
  const la = new LookaheadDrafter(3);
  // Iteration 1 ran 9 9 9 at positions 1..3 and predicted 4 5 6 for 2..4.
  la.observe(verdict(1, [9, 9, 9], [4, 5, 6], 2, [4]));
  // Iteration 2 ran 4 5 6 at 2..4 (its guesses) and predicted 5 6 3 for
  // 3..5. Each input was predicted from its left neighbour one iteration
  // earlier, so the diagonals (x[p−1] then, x[p] now, prediction for p+1)
  // are 9 4 5, 9 5 6 and 9 6 3, the last the most recent.
  la.observe(verdict(2, [4, 5, 6], [5, 6, 3], 3, [5]));
  // The context ends in 9: the most recent gram starting with 9 leads.
  const d = la.propose([1, 2, 9], 4);
  assert.deepEqual(d.tokens.slice(0, 2), [6, 3]);
  assert.equal(la.stats().pool_hits, 1);
});

Deno.test("policy: the greedy pick with a repetition penalty sees drafted tokens", () => {
  const params = { temperature: 0, repetitionPenalty: 2, repetitionLastN: 3 };
  const policy = new Policy(params);
  const logits = [1, 3, 2.9, 0];
  // Token 1 was generated recently (as a draft): penalised to 1.5 < 2.9.
  assert.equal(policy.best(logits, [0, 0], [1]), 2);
  // Out of the last-3 window: not penalised.
  assert.equal(policy.best(logits, [1, 0, 0], [0]), 1);
  const s = new Sampler(params);
  for (const t of [0, 0, 1]) s.accept(t);
  assert.equal(s.sample(logits, () => 0), 2);
});

Deno.test("options: bad specs are refused with what to do", async () => {
  const engine = await Engine.load();
  const bad: [SpeculativeSpec, RegExp][] = [
    [{}, /choose a drafter/],
    [
      { drafter: "tree" as never },
      /unknown drafter "tree"; use one of model, q8/,
    ],
    [{ nar: "diffusion" as never }, /unknown NAR mode/],
    [{ drafter: "model" }, /needs a draft model \(--draft-model PATH\)/],
    [
      { drafter: "ngram", draftModel: "x.bin" },
      /only used by the "model" drafter/,
    ],
    [
      { drafter: "layerskip", draftLayers: 5 },
      /draft layers must be an integer from 1 to 4/,
    ],
    [
      { drafter: "ngram", draftLayers: 2 },
      /only used by the "layerskip" drafter/,
    ],
    [{ drafter: "layerskip", ngram: 2 }, /ngram is only used/],
    [
      { drafter: "ngram", k: 0 },
      /k \(draft length\) must be an integer from 1 to 32/,
    ],
    [{ drafter: "ngram", window: 4 }, /window is for NAR modes/],
    [{ nar: "jacobi", drafter: "ngram" }, /drop the drafter/],
    [{ nar: "jacobi", k: 4 }, /give window \(--window\), not k/],
    [{ nar: "fixed", drafter: "ngram" }, /use drafter model, q8 or layerskip/],
    [{ drafter: "multi", members: ["ngram"] }, /at least two members/],
    [{ drafter: "multi", members: ["ngram", "ngram"] }, /must differ/],
    [
      { drafter: "model", draftModel: "/nonexistent.bin" },
      /draft model: .*nonexistent/,
    ],
  ];
  for (const [spec, message] of bad) {
    await assert.rejects(
      () => loadSpeculative(engine, spec),
      (e) => {
        assert.ok(e instanceof SeerError, `${e}`);
        // A missing file is the model's problem; the rest are bad options.
        const code = message.source.includes("nonexistent")
          ? "invalid_model"
          : "invalid_argument";
        assert.equal(e.code, code, e.message);
        assert.match(e.message, message);
        return true;
      },
      JSON.stringify(spec),
    );
  }
  const q8 = await Engine.load({ quant: "q8_0" });
  await assert.rejects(
    () => loadSpeculative(q8, { drafter: "q8" }),
    /already q8_0/,
  );
  q8.dispose();
  // A draft model with another vocabulary.
  const { tinyModel } = await import("../formats/fixtures.ts");
  const other = {
    ...tinyModel({ vocabSize: 300 }),
    source: "v300",
    format: "llama2c" as const,
  };
  await assert.rejects(
    () => loadSpeculative(engine, { drafter: "model", draftModel: other }),
    /has 300 tokens but the target has 512/,
  );
  engine.dispose();
});
