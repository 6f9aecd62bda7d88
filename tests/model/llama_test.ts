/**
 * The model's own guarantees, beyond the golden runs: forks share weights
 * but not caches, and out-of-range tokens and positions are refused. (That
 * a batched pass is bit-identical to single-token passes, for every batch
 * size, is tested with speculation in tests/generate/speculative_kv_test.ts.)
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { SeerError } from "../../src/errors.ts";
import { GOLDEN } from "../golden.ts";

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
