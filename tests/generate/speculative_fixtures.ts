/** Draft models shared by the speculative decoding tests. */
import type { ModelFile } from "../../src/formats/types.ts";
import { model, tinyModel } from "../formats/fixtures.ts";

/**
 * The built-in model as converted by llama.cpp to f16: a separate file
 * whose logits are close to the target's, so nearly every draft is accepted.
 */
export const F16_DRAFT = model("stories260K-f16.gguf");

/** A random model with the built-in vocabulary: a drafter that is mostly wrong. */
export function randomDraft(): ModelFile {
  const m = tinyModel({ vocabSize: 512, seqLen: 512, nLayers: 2 }, true, 3);
  return { ...m, source: "random-512", format: "llama2c" };
}
