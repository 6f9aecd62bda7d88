/**
 * OpenAI's response shapes for text and chat completions, whole and as
 * stream chunks, built from an engine result. `usage` is in every final
 * response and final chunk; `seer` carries the engine's own statistics
 * (timings, and drafted / accepted tokens for speculative decoders) and
 * its precise finish reason.
 */
import type { GenerateResult } from "../engine.ts";

export type Kind = "completion" | "chat";

/** Why a generation ended, as seer knows it (the engine's reasons + deadline). */
export type SeerFinish = GenerateResult["finish_reason"] | "deadline";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface SeerInfo {
  finish_reason: SeerFinish;
  seed: number;
  [stat: string]: number | string;
}

/** OpenAI knows two ends: a natural stop, or a limit. */
export function openaiFinish(reason: SeerFinish): "stop" | "length" {
  return reason === "stop" || reason === "eos" ? "stop" : "length";
}

export function usageOf(result: GenerateResult): Usage {
  const completion = result.stats.generated_tokens;
  return {
    prompt_tokens: result.n_prompt_tokens,
    completion_tokens: completion,
    total_tokens: result.n_prompt_tokens + completion,
  };
}

export function seerInfo(
  result: GenerateResult,
  finish: SeerFinish,
  seed: number,
): SeerInfo {
  return { ...result.stats, finish_reason: finish, seed };
}

export class Shapes {
  readonly created = Math.floor(Date.now() / 1000);
  readonly id: string;

  constructor(readonly kind: Kind, readonly model: string) {
    const uuid = crypto.randomUUID().replaceAll("-", "");
    this.id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${uuid}`;
  }

  #head(chunk: boolean) {
    return {
      id: this.id,
      object: this.kind === "chat"
        ? (chunk ? "chat.completion.chunk" : "chat.completion")
        : "text_completion",
      created: this.created,
      model: this.model,
    };
  }

  /** A whole (non-streamed) response. */
  full(result: GenerateResult, finish: SeerFinish, seed: number) {
    const finish_reason = openaiFinish(finish);
    const choice = this.kind === "chat"
      ? {
        index: 0,
        message: { role: "assistant", content: result.text },
        logprobs: null,
        finish_reason,
      }
      : { index: 0, text: result.text, logprobs: null, finish_reason };
    return {
      ...this.#head(false),
      choices: [choice],
      usage: usageOf(result),
      seer: seerInfo(result, finish, seed),
    };
  }

  /** Chat streams open with the assistant's role and no text. */
  opening() {
    return this.kind === "chat"
      ? {
        ...this.#head(true),
        choices: [{
          index: 0,
          delta: { role: "assistant", content: "" },
          logprobs: null,
          finish_reason: null,
        }],
      }
      : undefined;
  }

  /** A piece of text as it is generated. */
  delta(text: string) {
    const choice = this.kind === "chat"
      ? {
        index: 0,
        delta: { content: text },
        logprobs: null,
        finish_reason: null,
      }
      : { index: 0, text, logprobs: null, finish_reason: null };
    return { ...this.#head(true), choices: [choice] };
  }

  /** The closing chunk: finish reason, usage and seer's stats. */
  closing(result: GenerateResult, finish: SeerFinish, seed: number) {
    const finish_reason = openaiFinish(finish);
    const choice = this.kind === "chat"
      ? { index: 0, delta: {}, logprobs: null, finish_reason }
      : { index: 0, text: "", logprobs: null, finish_reason };
    return {
      ...this.#head(true),
      choices: [choice],
      usage: usageOf(result),
      seer: seerInfo(result, finish, seed),
    };
  }

  /** stream_options.include_usage: a last chunk with no choices, only usage. */
  usageOnly(result: GenerateResult) {
    return { ...this.#head(true), choices: [], usage: usageOf(result) };
  }
}
