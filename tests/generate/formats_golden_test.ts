/**
 * The golden runs through the other model files: the GGUF files that
 * llama.cpp's own tools wrote (f32 exact; f16 tokens exact, logits within
 * f16 rounding), and the q8_0 path (converted file = load-time --quant).
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { assertTopLogits, GOLDEN } from "../golden.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url).pathname;

/**
 * llama.cpp's converter writes llama.context_length = 128 although the
 * model was trained with 512 positions; the golden runs need 257.
 */
const CONTEXT = 512;

function goldenRuns(engine: Engine) {
  return GOLDEN.map((g) =>
    engine.complete({
      prompt: g.prompt,
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
      topLogits: { k: 5, steps: 8 },
    })
  );
}

Deno.test("golden: llama.cpp's f32 GGUF reproduces run.c exactly", async () => {
  const engine = await Engine.load({
    model: `${MODELS}stories260K-f32.gguf`,
    contextLength: CONTEXT,
  });
  goldenRuns(engine).forEach((r, i) => {
    const g = GOLDEN[i];
    assert.deepEqual(r.tokens, g.tokens, `tokens for "${g.prompt}"`);
    assert.equal(g.prompt + r.text + "\n", g.text);
    assertTopLogits(r.top_logits, g, 1e-4, `f32 gguf "${g.prompt}"`);
  });
  engine.dispose();
});

Deno.test("golden: llama.cpp's f16 GGUF keeps tokens, logits within 2e-2", async () => {
  const engine = await Engine.load({
    model: `${MODELS}stories260K-f16.gguf`,
    contextLength: CONTEXT,
  });
  goldenRuns(engine).forEach((r, i) => {
    const g = GOLDEN[i];
    assert.deepEqual(r.tokens, g.tokens, `tokens for "${g.prompt}"`);
    assertTopLogits(r.top_logits, g, 2e-2, `f16 gguf "${g.prompt}"`);
  });
  engine.dispose();
});

Deno.test("golden: GGUF's declared context of 128 is enforced until overridden", async () => {
  const engine = await Engine.load({ model: `${MODELS}stories260K-f32.gguf` });
  assert.equal(engine.model.contextLength, 128);
  const r = engine.complete({
    prompt: "",
    maxTokens: 300,
    sampling: { temperature: 0 },
  });
  // Generation ends at the context instead of reading past the cache.
  assert.ok(r.tokens.length <= 129);
  assert.equal(
    r.finish_reason === "context" || r.finish_reason === "eos",
    true,
  );
  assert.deepEqual(r.tokens, GOLDEN[0].tokens.slice(0, r.tokens.length));
  engine.dispose();
});
