/**
 * q8_0 against f32 on the golden sequences: teacher-forced top-1 agreement
 * (the issue asks ≥ 95%), how long greedy runs agree, and llama.cpp's mixed
 * q8_0 GGUF loading and generating.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { argmax } from "../../src/sampling/sampler.ts";
import { GOLDEN } from "../golden.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url).pathname;

Deno.test("q8_0: teacher-forced top-1 agrees with f32 at ≥ 95% of positions", async () => {
  const f32 = await Engine.load();
  const q8 = await Engine.load({ quant: "q8_0" });
  assert.ok(q8.model.quantized && !f32.model.quantized);
  const vocab = f32.model.config.vocabSize;
  let same = 0, total = 0;
  const kept: number[] = [];
  for (const g of GOLDEN) {
    const input = g.tokens.slice(0, -1);
    const a = f32.model.forwardBatch(input, 0, true);
    const b = q8.model.forwardBatch(input, 0, true);
    for (let p = 0; p < input.length; p++) {
      const row = (x: Float32Array) => x.subarray(p * vocab, (p + 1) * vocab);
      if (argmax(row(a), vocab) === argmax(row(b), vocab)) same++;
      total++;
    }
    const run = q8.complete({
      prompt: g.prompt,
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
    });
    let k = g.n_prompt_tokens;
    while (k < g.tokens.length && run.tokens[k] === g.tokens[k]) k++;
    kept.push(k - g.n_prompt_tokens);
  }
  const agreement = same / total;
  console.log(
    `q8_0 vs f32: top-1 agreement ${
      (agreement * 100).toFixed(2)
    }% of ${total} positions; ` +
      `greedy tokens before the first departure per golden prompt: ${
        kept.join(", ")
      }`,
  );
  assert.ok(agreement >= 0.95, `agreement ${agreement}`);
  f32.dispose();
  q8.dispose();
});

Deno.test("q8_0: llama.cpp's mixed q8_0/f16/f32 GGUF loads and generates", async () => {
  const engine = await Engine.load({
    model: `${MODELS}stories260K-q8_0.gguf`,
    contextLength: 512,
  });
  assert.ok(engine.model.quantized);
  // Teacher forcing on the golden runs: its top-1 is the f32 reference's
  // greedy choice at (as for our own q8_0) ≥ 95% of generated positions.
  const vocab = engine.model.config.vocabSize;
  let same = 0, total = 0;
  for (const g of GOLDEN) {
    const logits = engine.model.forwardBatch(g.tokens.slice(0, -1), 0, true);
    for (let p = g.n_prompt_tokens - 1; p < g.tokens.length - 1; p++) {
      const row = logits.subarray(p * vocab, (p + 1) * vocab);
      if (argmax(row, vocab) === g.tokens[p + 1]) same++;
      total++;
    }
  }
  console.log(
    `llama.cpp q8_0 GGUF: top-1 = golden at ${
      (same / total * 100).toFixed(2)
    }%`,
  );
  assert.ok(same / total >= 0.95, `agreement ${same / total}`);
  const r = engine.complete({
    prompt: "Once upon a time",
    maxTokens: 64,
    sampling: { temperature: 0 },
  });
  assert.equal(r.stats.generated_tokens, 64);
  // A working model writes English: mostly known words from the story.
  const words = r.text.toLowerCase().match(/[a-z]+/g) ?? [];
  const common = [
    "the",
    "a",
    "she",
    "he",
    "was",
    "to",
    "and",
    "they",
    "day",
    "big",
  ];
  assert.ok(words.length > 20 && words.some((w) => common.includes(w)), r.text);
  engine.dispose();
});
