/**
 * The model's own guarantees, beyond the golden runs: a batched pass gives
 * bit-identical logits to one token at a time (what makes greedy
 * speculative decoding exact), forks share weights but not caches, and
 * out-of-range tokens and positions are refused.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { SeerError } from "../../src/errors.ts";
import { GOLDEN } from "../golden.ts";

Deno.test("model: forwardBatch equals forward bit for bit (f32 and q8_0)", async () => {
  for (const quant of [undefined, "q8_0"] as const) {
    const engine = await Engine.load({ quant });
    const model = engine.model;
    const vocab = model.config.vocabSize;
    // 40 tokens: batches of 16, 16 and 8 rows, against one row at a time.
    const tokens = GOLDEN[4].tokens.slice(0, 40);
    const batched = model.forwardBatch(tokens, 0, true);
    for (let p = 0; p < tokens.length; p++) {
      const single = model.forward(tokens[p], p);
      const row = batched.subarray(p * vocab, (p + 1) * vocab);
      assert.ok(
        single.every((v, i) => Object.is(v, row[i])),
        `${quant ?? "f32"}: position ${p} differs`,
      );
    }
    engine.dispose();
  }
});

Deno.test("model: a fork has its own KV cache over the same weights", async () => {
  const engine = await Engine.load();
  const fork = engine.fork();
  const g = GOLDEN[1];
  const a = engine.complete({
    prompt: g.prompt,
    maxTokens: 30,
    sampling: { temperature: 0 },
  });
  // Interleave: the fork runs a different prompt, then the original again.
  fork.complete({
    prompt: "The cat sat",
    maxTokens: 30,
    sampling: { temperature: 0 },
  });
  const b = engine.complete({
    prompt: g.prompt,
    maxTokens: 30,
    sampling: { temperature: 0 },
  });
  assert.deepEqual(a.tokens, b.tokens);
  assert.deepEqual(a.tokens, g.tokens.slice(0, a.tokens.length));
  fork.dispose();
  engine.dispose();
});

Deno.test("model: tokens and positions out of range are refused", async () => {
  const engine = await Engine.load();
  const m = engine.model;
  const refused = (f: () => unknown, code: string) =>
    assert.throws(f, (e: unknown) => e instanceof SeerError && e.code === code);
  refused(() => m.forward(512, 0), "invalid_argument");
  refused(() => m.forward(-1, 0), "invalid_argument");
  refused(() => m.forward(1.5, 0), "invalid_argument");
  refused(() => m.forward(1, m.contextLength), "context_overflow");
  refused(
    () => m.forwardBatch([1, 2, 3], m.contextLength - 2),
    "context_overflow",
  );
  refused(() => m.fork(0), "invalid_argument");
  refused(() => m.fork(6), "invalid_argument");
  engine.dispose();
});
