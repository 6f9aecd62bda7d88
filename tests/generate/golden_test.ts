/**
 * Golden outputs: the built-in stories260K model at temperature 0 must
 * reproduce llama2.c's run.c token for token, with the top-5 logits of the
 * first 8 positions within 1e-4 (see ../shared/golden/README.md).
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";

export interface Golden {
  prompt: string;
  steps: number;
  text: string;
  tokens: number[];
  n_prompt_tokens: number;
  top5_logits_first8: [number, number][][];
}

export const GOLDEN: Golden[] = JSON.parse(
  await Deno.readTextFile(
    new URL("../../../shared/golden/stories260K-greedy.json", import.meta.url),
  ),
);

/** Asserts ids equal and logits within `tol` of the golden top-5 rows. */
export function assertTopLogits(
  actual: [number, number][][] | undefined,
  golden: Golden,
  tol: number,
  what: string,
) {
  if (!actual) throw new Error(`${what}: no top logits`);
  assert.equal(actual.length, 8, `${what}: rows`);
  for (let pos = 0; pos < 8; pos++) {
    const want = golden.top5_logits_first8[pos];
    const got: [number, number][] = actual[pos];
    assert.deepEqual(
      got.map(([id]) => id),
      want.map(([id]) => id),
      `${what}: top-5 ids at position ${pos}`,
    );
    for (let i = 0; i < 5; i++) {
      const d = Math.abs(got[i][1] - want[i][1]);
      assert.ok(
        d <= tol,
        `${what}: logit of ${want[i][0]} at position ${pos} off by ${d}`,
      );
    }
  }
}

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
