/**
 * The built-in stories260K model at temperature 0 must reproduce run.c
 * token for token, with the top-5 logits within 1e-4.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { assertTopLogits, GOLDEN } from "../golden.ts";

Deno.test("golden: built-in model reproduces run.c greedy output", async () => {
  const engine = await Engine.load();
  for (const g of GOLDEN) {
    const result = engine.complete({
      prompt: g.prompt,
      // run.c -n counts positions: steps + 1 ids in all, prompt included.
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
      topLogits: { k: 5, steps: 8 },
    });
    assert.deepEqual(result.tokens, g.tokens, `tokens for "${g.prompt}"`);
    assert.equal(result.n_prompt_tokens, g.n_prompt_tokens);
    // run.c echoes the prompt, then the generation, then a newline.
    assert.equal(
      g.prompt + result.text + "\n",
      g.text,
      `text for "${g.prompt}"`,
    );
    assertTopLogits(result.top_logits, g, 1e-4, `"${g.prompt}"`);
  }
  engine.dispose();
});
