/**
 * Plain autoregressive decoding: one forward pass per token. The prompt
 * runs as one batched prefill; each step feeds back the token chosen last
 * time and samples from the logits that come out. The token picked last is
 * never fed back, so no pass is wasted at the end.
 */
import type { LlamaModel } from "../model/llama.ts";
import type { Sampler } from "../sampling/sampler.ts";
import type { Decoder } from "./decoder.ts";

/** The K highest [id, logit] pairs at one position, highest first. */
export type TopLogits = [number, number][];

export function topLogits(logits: ArrayLike<number>, k: number): TopLogits {
  const order = Array.from({ length: logits.length }, (_, i) => i);
  order.sort((a, b) => logits[b] - logits[a] || a - b);
  return order.slice(0, k).map((i) => [i, logits[i]]);
}

export interface TopLogitsRequest {
  k: number;
  /** Positions 0..steps-1 are recorded. */
  steps: number;
  /** Receives one row per position, in order. */
  rows: TopLogits[];
}

export class ArDecoder implements Decoder {
  readonly name = "ar";
  #logits: Float32Array = new Float32Array(0);
  #pos = 0;
  #pending = -1;

  constructor(
    private readonly model: LlamaModel,
    private readonly sampler: Sampler,
    private readonly coin: () => number,
    private readonly top?: TopLogitsRequest,
  ) {}

  prefill(prompt: readonly number[]): void {
    const top = this.top;
    if (top && top.steps > 0) {
      const all = this.model.forwardBatch(prompt, 0, true);
      const vocab = this.model.config.vocabSize;
      for (let p = 0; p < prompt.length && p < top.steps; p++) {
        top.rows.push(
          topLogits(all.subarray(p * vocab, (p + 1) * vocab), top.k),
        );
      }
      this.#logits = all.subarray((prompt.length - 1) * vocab);
    } else {
      this.#logits = this.model.forwardBatch(prompt, 0);
    }
    this.#pos = prompt.length;
    this.#pending = -1;
  }

  next(): number[] {
    if (this.#pending >= 0) {
      this.#logits = this.model.forward(this.#pending, this.#pos);
      const top = this.top;
      if (top && this.#pos < top.steps) {
        top.rows.push(topLogits(this.#logits, top.k));
      }
      this.#pos++;
    }
    const token = this.sampler.sample(this.#logits, this.coin);
    this.#pending = token;
    return [token];
  }

  stats(): Record<string, number> {
    return {};
  }
}
