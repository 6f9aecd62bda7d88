/**
 * What speculation's exactness rests on, tested directly:
 * 1. a batched forward gives bit-identical logits to single-token forwards
 *    (so verifying k drafts in one pass scores them as plain decoding would);
 * 2. after rejections the target's (and the drafter's) KV cache holds exactly
 *    what a plain run over the accepted tokens would have put there.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import type { LlamaModel } from "../../src/model/llama.ts";
import { ModelDrafter, NgramDrafter } from "../../src/generate/drafters.ts";
import {
  type Drafter,
  Policy,
  SpeculativeDecoder,
} from "../../src/generate/speculative.ts";
import { Sampler } from "../../src/sampling/sampler.ts";
import { Rng } from "../../src/sampling/rng.ts";
import { F16_DRAFT } from "./speculative_fixtures.ts";
import { testRng } from "../helpers.ts";

/** Index of the first element that differs bit for bit, or -1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Batch sizes m (1..16) whose rows differ from single-token forwards. */
function inexactBatchSizes(model: LlamaModel): string[] {
  const vocab = model.config.vocabSize;
  const rand = testRng(5);
  const tokens = Array.from({ length: 16 }, () => Math.floor(rand() * vocab));
  const prefix = [1, 403, 407];
  const single = model.fork();
  for (const [i, t] of prefix.entries()) single.forward(t, i);
  const rows = tokens.map((t, i) =>
    single.forward(t, prefix.length + i).slice()
  );
  const bad: string[] = [];
  for (let m = 1; m <= 16; m++) {
    const batch = model.fork();
    for (const [i, t] of prefix.entries()) batch.forward(t, i);
    const all = batch.forwardBatch(tokens.slice(0, m), prefix.length, true);
    for (let i = 0; i < m; i++) {
      const at = firstDifference(
        all.subarray(i * vocab, (i + 1) * vocab),
        rows[i],
      );
      if (at >= 0) {
        bad.push(
          `m=${m} row ${i}: logit ${at} ${all[i * vocab + at]} vs ${
            rows[i][at]
          }`,
        );
        break;
      }
    }
    batch.dispose();
  }
  single.dispose();
  return bad;
}

for (const quant of [undefined, "q8_0"] as const) {
  Deno.test({
    name: `exactness: forwardBatch rows are bit-identical to forward (${
      quant ?? "f32"
    })`,
    fn: async () => {
      const engine = await Engine.load({ quant });
      try {
        assert.deepEqual(inexactBatchSizes(engine.model), []);
      } finally {
        engine.dispose();
      }
    },
  });
}

/**
 * Runs `steps` decoder steps from `prompt`, then checks both caches against
 * plain runs that feed the same tokens one forward at a time.
 */
function checkRollback(
  engine: Engine,
  makeDrafter: (
    target: LlamaModel,
  ) => { drafter: Drafter; draftModel?: LlamaModel },
  sampling: ConstructorParameters<typeof Sampler>[0],
  prompt: number[],
  k: number,
  steps: number,
) {
  const target = engine.model.fork();
  const { drafter, draftModel } = makeDrafter(target);
  const rng = new Rng(engine.rt, 11);
  const coin = () => rng.uniform();
  const decoder = new SpeculativeDecoder(
    target,
    drafter,
    new Sampler(sampling),
    coin,
    {
      k,
      adaptive: false,
    },
  );
  const context = [...prompt];
  decoder.prefill(prompt);
  for (let i = 0; i < steps; i++) context.push(...decoder.next(context, 64));
  const st = decoder.stats();
  assert.ok(
    st.accepted_tokens < st.drafted_tokens,
    "some drafts were rejected",
  );
  assert.ok(st.accepted_tokens > 0, "some drafts were accepted");

  // The target has fed every context token but the last.
  const fed = context.length - 1;
  const check = (m: LlamaModel, upTo: number, what: string) => {
    const plain = m.fork();
    for (let i = 0; i < upTo; i++) plain.forward(context[i], i);
    const a = m.kvSnapshot(0, upTo);
    const b = plain.kvSnapshot(0, upTo);
    assert.equal(firstDifference(a.keys, b.keys), -1, `${what}: keys`);
    assert.equal(firstDifference(a.values, b.values), -1, `${what}: values`);
    plain.dispose();
  };
  check(target, fed, "target");
  // The drafter has fed at least all but the last two context tokens.
  if (draftModel) check(draftModel, fed - 1, "drafter");
  decoder.dispose();
  draftModel?.dispose();
  target.dispose();
  rng.dispose();
  return st;
}

// These runs verify at most k + 1 = 3 rows per pass and prefill at most 3
// prompt tokens: the batch sizes whose rows are bit-identical to forward
// today (see the exactness test above), so any difference is the rollback's.
const PROMPT = [1, 403, 407];

Deno.test("kv rollback: greedy with prompt lookup, after rejections", async () => {
  const engine = await Engine.load();
  checkRollback(
    engine,
    () => ({ drafter: new NgramDrafter(2) }),
    { temperature: 0 },
    PROMPT,
    2,
    80,
  );
  engine.dispose();
});

Deno.test("kv rollback: sampling with a model drafter, after rejections", async () => {
  const engine = await Engine.load();
  const file = await (await import("../../src/formats/load.ts")).readModelFile(
    F16_DRAFT,
  );
  const { LlamaModel } = await import("../../src/model/llama.ts");
  const drafterModel = LlamaModel.load(engine.rt, file);
  const st = checkRollback(
    engine,
    () => {
      const m = drafterModel.fork();
      // Hotter than the target, so a good share of drafts is rejected.
      const policy = new Policy({ temperature: 2 });
      const rng = new Rng(engine.rt, 5);
      return {
        drafter: new ModelDrafter("model", m, policy, () => rng.uniform(), 1),
        draftModel: m,
      };
    },
    { temperature: 1 },
    PROMPT,
    2,
    60,
  );
  assert.ok(st.drafted_tokens > 0);
  drafterModel.dispose();
  engine.dispose();
});
