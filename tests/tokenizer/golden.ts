/** Golden tokenizer checks, shared by the tok512.bin and GGUF vocabulary tests. */
import assert from "node:assert/strict";
import { Tokenizer } from "../../src/tokenizer/bpe.ts";
import type { Vocabulary } from "../../src/formats/types.ts";
import { golden } from "../formats/fixtures.ts";

/** Each golden prompt encodes to the golden run's first n_prompt_tokens ids. */
export function checkGoldenEncoding(vocab: Vocabulary): void {
  const tok = new Tokenizer(vocab);
  for (const g of golden()) {
    assert.deepEqual(
      tok.encode(g.prompt, { bos: true }),
      g.tokens.slice(0, g.n_prompt_tokens),
      JSON.stringify(g.prompt),
    );
  }
}

/** Each golden token sequence decodes to run.c's stdout (`text`). */
export function checkGoldenDecoding(vocab: Vocabulary): void {
  const tok = new Tokenizer(vocab);
  for (const g of golden()) {
    // run.c prints every token after the first, then a final newline.
    const text = tok.decodeAll(g.tokens, { safe: true }) + "\n";
    assert.equal(text, g.text, JSON.stringify(g.prompt));
  }
}
