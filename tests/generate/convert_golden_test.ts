/**
 * The golden runs through GGUF files our own `convert` writes: f32 exact,
 * and the converted q8_0 file generating exactly what load-time
 * `--quant q8_0` generates from the llama2.c checkpoint.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { convert } from "../../scripts/convert.ts";
import { assertTopLogits, GOLDEN } from "../golden.ts";

const MODELS = new URL("../../models/", import.meta.url).pathname;

function runs(engine: Engine) {
  return GOLDEN.map((g) =>
    engine.complete({
      prompt: g.prompt,
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
      topLogits: { k: 5, steps: 8 },
    })
  );
}

Deno.test("golden: our converted GGUF files (f32 exact; q8_0 = --quant q8_0)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    for (const type of ["f32", "q8_0"] as const) {
      await convert({
        input: `${MODELS}stories260K.bin`,
        tokenizer: `${MODELS}tok512.bin`,
        out: `${tmp}/${type}.gguf`,
        type,
      });
    }
    const f32 = await Engine.load({ model: `${tmp}/f32.gguf` });
    runs(f32).forEach((r, i) => {
      const g = GOLDEN[i];
      assert.deepEqual(r.tokens, g.tokens, `f32 tokens for "${g.prompt}"`);
      assert.equal(g.prompt + r.text + "\n", g.text);
      assertTopLogits(r.top_logits, g, 1e-4, `converted f32 "${g.prompt}"`);
    });
    f32.dispose();

    const converted = await Engine.load({ model: `${tmp}/q8_0.gguf` });
    const quantized = await Engine.load({ quant: "q8_0" });
    assert.ok(converted.model.quantized && quantized.model.quantized);
    const a = runs(converted), b = runs(quantized);
    for (let i = 0; i < GOLDEN.length; i++) {
      assert.deepEqual(a[i].tokens, b[i].tokens, `q8_0 tokens, prompt ${i}`);
      assert.deepEqual(
        a[i].top_logits,
        b[i].top_logits,
        `q8_0 logits, prompt ${i}`,
      );
    }
    converted.dispose();
    quantized.dispose();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
