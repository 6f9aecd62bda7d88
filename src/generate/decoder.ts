/**
 * The generation loop, shared by every decoding strategy. A Decoder only
 * proposes the next tokens (one for plain autoregressive decoding, several
 * for speculative or staged NAR decoding); the loop owns everything else:
 * the context, stop tokens and strings, detokenization, limits,
 * cancellation and statistics. So every strategy stops, streams and counts
 * the same way, and greedy runs can be compared token for token.
 */
import { SeerError } from "../errors.ts";
import { StopMatcher } from "./stop.ts";

export interface Decoder {
  readonly name: string;
  /** Runs the prompt through the model (positions 0..prompt.length-1). */
  prefill(prompt: readonly number[]): void;
  /**
   * The next tokens (1..max of them) continuing `context` (prompt and all
   * tokens generated so far). A decoder may return a stop token; the loop
   * drops everything from it on.
   */
  next(context: readonly number[], max: number): number[];
  /** Strategy counters merged into the run's stats. */
  stats(): Record<string, number>;
  dispose?(): void;
}

export type FinishReason = "length" | "stop" | "eos" | "context" | "abort";

export interface TokenEvent {
  /** The generated id; null for text released only at the end. */
  token: number | null;
  /** Text that became safe to show with this token (may be empty). */
  text: string;
}

export interface GenerationStats {
  prompt_tokens: number;
  generated_tokens: number;
  prompt_ms: number;
  generation_ms: number;
  prompt_tokens_per_second: number;
  tokens_per_second: number;
  [counter: string]: number;
}

export interface GenerationResult {
  /** BOS, prompt and generated ids; a final stop token is left out. */
  tokens: number[];
  n_prompt_tokens: number;
  /** The generated text (the prompt not included). */
  text: string;
  finish_reason: FinishReason;
  stats: GenerationStats;
}

export interface LoopOptions {
  decoder: Decoder;
  prompt: readonly number[];
  maxTokens: number;
  contextLength: number;
  /** Ids that end generation (EOS, BOS). */
  stopTokens: readonly number[];
  stopStrings?: readonly string[];
  /** Text of `token` following `prev` (pieces may be partial UTF-8: held). */
  detokenize: (prev: number, token: number) => string;
  /** Flushes any bytes the detokenizer holds back at the end. */
  flush?: () => string;
  /** Told every token that joins the context, prompt first. */
  accept?: (token: number) => void;
  signal?: AbortSignal;
  now?: () => number;
}

/**
 * Runs a decoder to the end, yielding each generated token with its text.
 * Synchronous so the hot loop has no await per token; callers that must
 * interleave I/O (the server) await between events.
 */
export function* runLoop(
  o: LoopOptions,
): Generator<TokenEvent, GenerationResult, void> {
  const now = o.now ?? (() => performance.now());
  if (!Number.isInteger(o.maxTokens) || o.maxTokens < 0) {
    throw new SeerError(
      "invalid_argument",
      `max tokens must be a non-negative integer, got ${o.maxTokens}`,
    );
  }
  if (o.prompt.length === 0) {
    throw new SeerError("invalid_argument", "the prompt has no tokens");
  }
  if (o.prompt.length > o.contextLength) {
    throw new SeerError(
      "context_overflow",
      `the prompt is ${o.prompt.length} tokens but the context holds ${o.contextLength}; shorten the prompt`,
    );
  }
  const tokens = [...o.prompt];
  for (const t of tokens) o.accept?.(t);
  const stops = new StopMatcher(o.stopStrings ?? []);
  let text = "";
  let finish: FinishReason = "length";

  const t0 = now();
  o.decoder.prefill(o.prompt);
  const t1 = now();

  // The last token is never fed back, so the context allows one more token
  // than it has positions.
  const limit = Math.min(o.prompt.length + o.maxTokens, o.contextLength + 1);
  outer: while (tokens.length < limit) {
    if (o.signal?.aborted) {
      finish = "abort";
      break;
    }
    const proposed = o.decoder.next(tokens, limit - tokens.length);
    for (const token of proposed) {
      if (o.stopTokens.includes(token)) {
        finish = "eos";
        break outer;
      }
      const prev = tokens[tokens.length - 1];
      tokens.push(token);
      o.accept?.(token);
      const { text: piece, stopped } = stops.push(o.detokenize(prev, token));
      text += piece;
      if (stopped) {
        finish = "stop";
        yield { token, text: piece };
        break outer;
      }
      yield { token, text: piece };
      if (tokens.length >= limit) break;
    }
  }
  if (
    finish === "length" && tokens.length >= o.contextLength + 1 &&
    o.prompt.length + o.maxTokens > o.contextLength + 1
  ) {
    finish = "context";
  }
  if (finish !== "stop") {
    const rest = stops.push(o.flush?.() ?? "").text + stops.flush();
    text += rest;
    if (rest) yield { token: null, text: rest };
  }
  const t2 = now();

  const generated = tokens.length - o.prompt.length;
  const promptMs = t1 - t0;
  const genMs = t2 - t1;
  return {
    tokens,
    n_prompt_tokens: o.prompt.length,
    text,
    finish_reason: finish,
    stats: {
      prompt_tokens: o.prompt.length,
      generated_tokens: generated,
      prompt_ms: promptMs,
      generation_ms: genMs,
      prompt_tokens_per_second: promptMs > 0
        ? o.prompt.length / promptMs * 1000
        : 0,
      tokens_per_second: genMs > 0 ? generated / genMs * 1000 : 0,
      ...o.decoder.stats(),
    },
  };
}
