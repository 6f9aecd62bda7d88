/**
 * The golden reference runs (../shared/golden/README.md): llama2.c's run.c
 * on stories260K at temperature 0, with the top-5 logits of the first 8
 * positions. Shared by the tests that must reproduce them.
 */
import assert from "node:assert/strict";

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
    new URL("../../shared/golden/stories260K-greedy.json", import.meta.url),
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
