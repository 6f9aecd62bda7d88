/**
 * Request validation for the OpenAI-style endpoints. Every field is checked
 * for type and range before anything reaches the engine, and every refusal
 * names the field, what it must be and what it was, so a client can fix
 * the request from the message alone. Unknown fields are ignored (OpenAI
 * clients send extras such as `user` or `metadata`); known fields asking
 * for something seer does not do (n > 1, logprobs, tools, …) are refused
 * rather than silently ignored.
 */
import { type DrafterKind, DRAFTERS } from "../generate/setup.ts";
import { MAX_DRAFT } from "../generate/speculative.ts";
import { ApiError, invalid } from "./errors.ts";

/** What validation needs to know about the loaded model. */
export interface ModelLimits {
  contextLength: number;
  vocabSize: number;
}

export { DRAFTERS };
export type Drafter = DrafterKind;

/** The `speculative` extension: which drafter, and how many tokens per draft. */
export interface SpeculativeSpec {
  drafter: Drafter;
  k?: number;
}

/** Largest draft length: the speculative decoder's own limit. */
export const MAX_DRAFT_K = MAX_DRAFT;

export interface SamplingFields {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repetitionPenalty: number;
}

export interface CommonParams {
  maxTokens: number;
  sampling: SamplingFields;
  /** Absent: the server picks one (reported back in the response). */
  seed?: number;
  stop: string[];
  stream: boolean;
  /** stream_options.include_usage: a final chunk carrying only usage. */
  includeUsage: boolean;
  /** Absent: the server's default; null: plain decoding. */
  speculative?: SpeculativeSpec | null;
}

export interface CompletionParams extends CommonParams {
  /** Text, or token ids used as they are. */
  prompt: string | number[];
}

export type ChatRole = "system" | "developer" | "user" | "assistant";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatParams extends CommonParams {
  messages: ChatMessage[];
}

/** OpenAI's default for /v1/completions. */
export const DEFAULT_COMPLETION_TOKENS = 16;
export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_LENGTH = 256;
export const MAX_MESSAGES = 1024;

export type Json = Record<string, unknown>;

/** A short, safe rendering of a bad value for an error message. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") {
    const s = JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
    return `${s} (a string)`;
  }
  if (typeof v === "number") return String(v);
  if (typeof v === "object") return "an object";
  return `${String(v)} (a ${typeof v})`;
}

/** A value present in the body: an own property that is not null. */
export function field(body: Json, name: string): unknown {
  return Object.hasOwn(body, name) ? body[name] ?? undefined : undefined;
}

export interface NumberRule {
  min: number;
  max: number;
  integer?: boolean;
  /** Exclude the bound itself. */
  minOpen?: boolean;
  maxOpen?: boolean;
}

function rangeText(r: NumberRule): string {
  const kind = r.integer ? "an integer" : "a number";
  if (r.max === Infinity) return `${kind} ${r.minOpen ? ">" : "≥"} ${r.min}`;
  const lo = r.minOpen ? "(" : "[";
  const hi = r.maxOpen ? ")" : "]";
  if (!r.minOpen && !r.maxOpen) return `${kind} from ${r.min} to ${r.max}`;
  return `${kind} in ${lo}${r.min}, ${r.max}${hi}`;
}

export function number(
  body: Json,
  name: string,
  rule: NumberRule,
  param = name,
): number | undefined {
  const v = field(body, name);
  if (v === undefined) return undefined;
  const ok = typeof v === "number" && Number.isFinite(v) &&
    (rule.minOpen ? v > rule.min : v >= rule.min) &&
    (rule.maxOpen ? v < rule.max : v <= rule.max) &&
    (!rule.integer || Number.isInteger(v));
  if (!ok) {
    throw invalid(
      param,
      `"${param}" must be ${rangeText(rule)}, got ${describe(v)}`,
    );
  }
  return v as number;
}

function boolean(body: Json, name: string): boolean | undefined {
  const v = field(body, name);
  if (v === undefined) return undefined;
  if (typeof v !== "boolean") {
    throw invalid(name, `"${name}" must be true or false, got ${describe(v)}`);
  }
  return v;
}

/** Refuses lone surrogates: they have no UTF-8 form, so no tokens either. */
function text(param: string, s: string): string {
  if (!s.isWellFormed()) {
    throw invalid(
      param,
      `"${param}" contains a lone UTF-16 surrogate, which is not valid Unicode; send well-formed text`,
    );
  }
  return s;
}

function unsupported(param: string, message: string): ApiError {
  return new ApiError(400, "unsupported_value", message, param);
}

/**
 * Fields that ask for features seer lacks: accepted only at their
 * do-nothing values.
 */
function refuseUnsupported(body: Json, chat: boolean): void {
  const n = number(body, "n", { min: 1, max: Infinity, integer: true });
  if (n !== undefined && n !== 1) {
    throw unsupported(
      "n",
      `"n" must be 1: seer returns one choice per request`,
    );
  }
  const bestOf = number(body, "best_of", {
    min: 1,
    max: Infinity,
    integer: true,
  });
  if (bestOf !== undefined && bestOf !== 1) {
    throw unsupported(
      "best_of",
      `"best_of" must be 1: seer returns one choice per request`,
    );
  }
  if (boolean(body, "echo")) {
    throw unsupported("echo", `"echo" is not supported; leave it false`);
  }
  const logprobs = field(body, "logprobs");
  if (logprobs !== undefined && logprobs !== false && logprobs !== 0) {
    if (
      chat ? typeof logprobs !== "boolean" : typeof logprobs !== "number"
    ) {
      throw invalid(
        "logprobs",
        `"logprobs" must be ${chat ? "true or false" : "an integer"}, got ${
          describe(logprobs)
        }`,
      );
    }
    throw unsupported("logprobs", `"logprobs" is not supported; leave it out`);
  }
  const topLogprobs = field(body, "top_logprobs");
  if (topLogprobs !== undefined && topLogprobs !== 0) {
    throw unsupported(
      "top_logprobs",
      `"top_logprobs" is not supported; leave it out`,
    );
  }
  const suffix = field(body, "suffix");
  if (suffix !== undefined && suffix !== "") {
    throw unsupported(
      "suffix",
      `"suffix" (insertion) is not supported; leave it out`,
    );
  }
  for (const name of ["presence_penalty", "frequency_penalty"]) {
    const v = number(body, name, { min: -2, max: 2 });
    if (v !== undefined && v !== 0) {
      throw unsupported(
        name,
        `"${name}" is not supported; use "repeat_penalty" (> 1 discourages repeats)`,
      );
    }
  }
  const bias = field(body, "logit_bias");
  if (bias !== undefined) {
    if (typeof bias !== "object" || Array.isArray(bias)) {
      throw invalid(
        "logit_bias",
        `"logit_bias" must be an object, got ${describe(bias)}`,
      );
    }
    if (Object.keys(bias as object).length > 0) {
      throw unsupported(
        "logit_bias",
        `"logit_bias" is not supported; leave it out`,
      );
    }
  }
  for (const name of ["tools", "functions"]) {
    const v = field(body, name);
    if (v !== undefined && !(Array.isArray(v) && v.length === 0)) {
      throw unsupported(
        name,
        `"${name}" (tool calling) is not supported; leave it out`,
      );
    }
  }
  const format = field(body, "response_format");
  if (format !== undefined) {
    const type = typeof format === "object" && !Array.isArray(format)
      ? (format as Json).type
      : undefined;
    if (type !== "text") {
      throw unsupported(
        "response_format",
        `"response_format" must be { "type": "text" }: structured output is not supported`,
      );
    }
  }
}

function stopStrings(body: Json): string[] {
  const v = field(body, "stop");
  if (v === undefined) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length > MAX_STOP_STRINGS) {
    throw invalid(
      "stop",
      `"stop" must be a string or an array of at most ${MAX_STOP_STRINGS} strings, got ${
        describe(v)
      }${Array.isArray(v) ? ` of ${v.length}` : ""}`,
    );
  }
  return list.map((s, i) => {
    if (typeof s !== "string" || s.length === 0 || s.length > MAX_STOP_LENGTH) {
      throw invalid(
        "stop",
        `"stop[${i}]" must be a non-empty string of at most ${MAX_STOP_LENGTH} characters, got ${
          describe(s)
        }`,
      );
    }
    return text("stop", s);
  });
}

function speculative(body: Json): SpeculativeSpec | null | undefined {
  if (!Object.hasOwn(body, "speculative")) return undefined;
  const v = body.speculative;
  if (v === null || v === false) return null;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw invalid(
      "speculative",
      `"speculative" must be an object { "drafter": ${
        DRAFTERS.map((d) => `"${d}"`).join(" | ")
      }, "k": integer }, or null; got ${describe(v)}`,
    );
  }
  const o = v as Json;
  for (const key of Object.keys(o)) {
    if (key !== "drafter" && key !== "k") {
      throw invalid(
        `speculative.${key}`,
        `unknown field "speculative.${key}"; the fields are "drafter" and "k"`,
      );
    }
  }
  const drafter = o.drafter;
  if (
    typeof drafter !== "string" ||
    !(DRAFTERS as readonly string[]).includes(drafter)
  ) {
    throw invalid(
      "speculative.drafter",
      `"speculative.drafter" must be one of ${DRAFTERS.join(", ")}; got ${
        describe(drafter)
      }`,
    );
  }
  const k = number(
    o,
    "k",
    { min: 1, max: MAX_DRAFT_K, integer: true },
    "speculative.k",
  );
  return k === undefined
    ? { drafter: drafter as Drafter }
    : { drafter: drafter as Drafter, k };
}

function common(
  body: Json,
  limits: ModelLimits,
  defaultMaxTokens: number,
  chat: boolean,
): CommonParams {
  const model = field(body, "model");
  if (model !== undefined) {
    if (typeof model !== "string" || model.length > 256) {
      throw invalid(
        "model",
        `"model" must be a string (a model id from /v1/models), got ${
          describe(model)
        }`,
      );
    }
    text("model", model);
  }
  refuseUnsupported(body, chat);
  const tokenRule = { min: 0, max: limits.contextLength, integer: true };
  const maxTokens = number(body, "max_tokens", tokenRule) ??
    (chat
      ? number(
        body,
        "max_completion_tokens",
        tokenRule,
        "max_completion_tokens",
      )
      : undefined) ??
    defaultMaxTokens;
  const repeat =
    number(body, "repeat_penalty", { min: 0, max: 10, minOpen: true }) ??
      number(body, "repetition_penalty", { min: 0, max: 10, minOpen: true });
  const streamOptions = field(body, "stream_options");
  let includeUsage = false;
  if (streamOptions !== undefined) {
    if (typeof streamOptions !== "object" || Array.isArray(streamOptions)) {
      throw invalid(
        "stream_options",
        `"stream_options" must be an object such as { "include_usage": true }, got ${
          describe(streamOptions)
        }`,
      );
    }
    includeUsage = boolean(streamOptions as Json, "include_usage") ?? false;
  }
  return {
    maxTokens,
    sampling: {
      temperature: number(body, "temperature", { min: 0, max: 2 }) ?? 1,
      topK: number(body, "top_k", {
        min: 0,
        max: limits.vocabSize,
        integer: true,
      }) ?? 0,
      topP: number(body, "top_p", { min: 0, max: 1, minOpen: true }) ?? 1,
      minP: number(body, "min_p", { min: 0, max: 1, maxOpen: true }) ?? 0,
      repetitionPenalty: repeat ?? 1,
    },
    seed: number(body, "seed", {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
      integer: true,
    }),
    stop: stopStrings(body),
    stream: boolean(body, "stream") ?? false,
    includeUsage,
    speculative: speculative(body),
  };
}

/** POST /v1/completions. */
export function parseCompletion(
  body: Json,
  limits: ModelLimits,
): CompletionParams {
  const p = common(
    body,
    limits,
    Math.min(DEFAULT_COMPLETION_TOKENS, limits.contextLength),
    false,
  );
  const prompt = field(body, "prompt");
  if (prompt === undefined) {
    throw invalid(
      "prompt",
      `"prompt" is required: a string or an array of token ids`,
    );
  }
  if (typeof prompt === "string") {
    return { ...p, prompt: text("prompt", prompt) };
  }
  if (!Array.isArray(prompt) || prompt.length === 0) {
    throw invalid(
      "prompt",
      `"prompt" must be a string, a one-string array or a non-empty array of token ids, got ${
        describe(prompt)
      }`,
    );
  }
  if (typeof prompt[0] === "string") {
    if (prompt.length !== 1) {
      throw unsupported(
        "prompt",
        `"prompt" holds ${prompt.length} prompts; send one per request (n = 1)`,
      );
    }
    return { ...p, prompt: text("prompt", prompt[0]) };
  }
  if (prompt.length > limits.contextLength) {
    throw new ApiError(
      400,
      "context_length_exceeded",
      `the prompt is ${prompt.length} tokens but the context holds ${limits.contextLength}; shorten the prompt`,
      "prompt",
    );
  }
  prompt.forEach((id, i) => {
    if (
      typeof id !== "number" || !Number.isInteger(id) || id < 0 ||
      id >= limits.vocabSize
    ) {
      throw invalid(
        "prompt",
        `"prompt[${i}]" must be a token id, an integer from 0 to ${
          limits.vocabSize - 1
        }, got ${describe(id)}`,
      );
    }
  });
  return { ...p, prompt: prompt as number[] };
}

const ROLES: readonly string[] = ["system", "developer", "user", "assistant"];

function message(v: unknown, i: number): ChatMessage {
  const at = `messages[${i}]`;
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalid(
      "messages",
      `"${at}" must be an object { "role", "content" }, got ${describe(v)}`,
    );
  }
  const m = v as Json;
  if (typeof m.role !== "string" || !ROLES.includes(m.role)) {
    throw invalid(
      "messages",
      `"${at}.role" must be one of ${ROLES.join(", ")}, got ${
        describe(m.role)
      }`,
    );
  }
  const name = field(m, "name");
  if (name !== undefined && typeof name !== "string") {
    throw invalid(
      "messages",
      `"${at}.name" must be a string, got ${describe(name)}`,
    );
  }
  const content = m.content;
  if (typeof content === "string") {
    return { role: m.role as ChatRole, content: text("messages", content) };
  }
  if (Array.isArray(content)) {
    const parts = content.map((part, j) => {
      const p = part as Json;
      if (
        typeof part !== "object" || part === null || p.type !== "text" ||
        typeof p.text !== "string"
      ) {
        throw unsupported(
          "messages",
          `"${at}.content[${j}]" must be { "type": "text", "text": string }: only text is supported`,
        );
      }
      return p.text as string;
    });
    return {
      role: m.role as ChatRole,
      content: text("messages", parts.join("")),
    };
  }
  throw invalid(
    "messages",
    `"${at}.content" must be a string or an array of text parts, got ${
      describe(content)
    }`,
  );
}

/** POST /v1/chat/completions. */
export function parseChat(body: Json, limits: ModelLimits): ChatParams {
  const p = common(body, limits, limits.contextLength, true);
  const messages = field(body, "messages");
  if (
    !Array.isArray(messages) || messages.length === 0 ||
    messages.length > MAX_MESSAGES
  ) {
    throw invalid(
      "messages",
      `"messages" must be an array of 1 to ${MAX_MESSAGES} messages, got ${
        messages === undefined ? "nothing" : describe(messages)
      }`,
    );
  }
  return { ...p, messages: messages.map(message) };
}
