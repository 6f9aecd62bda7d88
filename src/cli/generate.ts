/**
 * `deno task cli generate`: text from a prompt, streamed to stdout with
 * stats on stderr, or one JSON object with `--json`.
 */
import { Engine } from "../engine.ts";
import { number, type Options, parse, string } from "./args.ts";
import { SeerError } from "../errors.ts";
import { ThreadPool } from "../worker/pool.ts";
import {
  type DrafterKind,
  loadSpeculative,
  type NarMode,
  type Speculative,
} from "../generate/setup.ts";

export const HELP = `usage: deno task cli generate [options]

  --model PATH          model file: llama2.c .bin or GGUF (default: built-in stories260K)
  --tokenizer PATH      llama2.c tokenizer.bin (needed for llama2.c models)
  --prompt TEXT         prompt text (default: empty, i.e. BOS only)
  --max-tokens N        new tokens to generate (default 256)
  --temperature T       0 = greedy (default 1)
  --top-k K             keep the K most likely tokens (default 0 = all)
  --top-p P             nucleus sampling threshold (default 1 = off)
  --min-p P             drop tokens below P × the best (default 0 = off)
  --repeat-penalty R    penalise recent tokens (default 1 = off)
  --seed S              PRNG seed (default 0); the same seed gives the same text
  --stop TEXT           stop when this text appears (may repeat)
  --quant q8_0          quantize f32 weights to q8_0 at load
  --context N           context length (overrides the model file's)
  --threads N           threads splitting every matrix product (default 1); same output
  --json                print one JSON object (tokens, text, stats) instead of text
  --top-logits K        with --json: record the K highest logits per position
  --top-logits-steps S  … for positions 0..S-1 (default 8)

 speculative and staged NAR decoding (same output as plain decoding, fewer target passes):
  --speculative D       drafter: model | q8 | layerskip | ngram | multi
  --draft-model PATH    the separate draft model (--speculative model; same vocabulary)
  --draft-k N           longest draft, 1..32 (default 6; adapts to acceptance)
  --draft-layers L      layers the layerskip drafter keeps (default: half the target's)
  --ngram N             longest n-gram prompt lookup matches (default 3)
  --nar M               jacobi | lookahead | fixed (fixed drafts with --speculative
                        model|q8|layerskip, default layerskip)
  --window N            tokens a NAR pass guesses, 1..32 (default 4)
  --help                this text`;

export const OPTIONS: Options = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  prompt: { type: "string" },
  "max-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repeat-penalty": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  quant: { type: "string" },
  context: { type: "string" },
  threads: { type: "string" },
  json: { type: "boolean" },
  "top-logits": { type: "string" },
  "top-logits-steps": { type: "string" },
  speculative: { type: "string" },
  "draft-model": { type: "string" },
  "draft-k": { type: "string" },
  "draft-layers": { type: "string" },
  ngram: { type: "string" },
  nar: { type: "string" },
  window: { type: "string" },
  help: { type: "boolean" },
};

export async function generateCommand(args: string[]): Promise<void> {
  const v = parse(args, OPTIONS, HELP);
  if (v.help) {
    console.log(HELP);
    return;
  }
  const quant = string(v, "quant");
  if (quant !== undefined && quant !== "q8_0") {
    throw new SeerError(
      "invalid_argument",
      `--quant must be q8_0, got "${quant}"`,
    );
  }
  const topK = number(v, "top-logits", { min: 1, max: 1000, integer: true });
  const threads = number(v, "threads", { min: 1, max: 64, integer: true }) ??
    1;
  // The process exits after the command, which ends the workers on every path.
  const pool = threads > 1 ? await ThreadPool.create({ threads }) : undefined;
  const engine = await Engine.load({
    runtime: pool?.runtime,
    model: string(v, "model"),
    tokenizer: string(v, "tokenizer"),
    quant: quant as "q8_0" | undefined,
    contextLength: number(v, "context", {
      min: 1,
      max: 1 << 20,
      integer: true,
    }),
  });
  let spec: Speculative | undefined;
  try {
    spec = await speculativeFromFlags(v, engine);
  } catch (e) {
    engine.dispose();
    throw e;
  }
  const run = engine.generate({
    decoder: spec?.decoder,
    prompt: string(v, "prompt") ?? "",
    maxTokens:
      number(v, "max-tokens", { min: 0, max: 1 << 20, integer: true }) ??
        256,
    sampling: {
      temperature: number(v, "temperature", { min: 0, max: 100 }),
      topK: number(v, "top-k", { min: 0, integer: true }),
      topP: number(v, "top-p", { min: 0, max: 1 }),
      minP: number(v, "min-p", { min: 0, max: 1 }),
      repetitionPenalty: number(v, "repeat-penalty", { min: 0, max: 10 }),
    },
    seed: number(v, "seed", {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
      integer: true,
    }),
    stop: v.stop as unknown as string[] | undefined,
    topLogits: topK
      ? {
        k: topK,
        steps: number(v, "top-logits-steps", { min: 0, integer: true }) ?? 8,
      }
      : undefined,
  });

  const out = new TextEncoder();
  const prompt = string(v, "prompt") ?? "";
  // Like llama2.c, echo the prompt so the story reads whole.
  if (!v.json) Deno.stdout.writeSync(out.encode(prompt));
  let step = run.next();
  while (!step.done) {
    if (!v.json) Deno.stdout.writeSync(out.encode(step.value.text));
    step = run.next();
  }
  const result = step.value;
  spec?.dispose();
  engine.dispose();
  await pool?.dispose();
  if (v.json) {
    console.log(JSON.stringify(result));
    return;
  }
  Deno.stdout.writeSync(out.encode("\n"));
  const s = result.stats;
  const extra = Object.entries(s)
    .filter(([key]) => !(key in BASE_STATS))
    .map(([key, value]) => `${key} ${round(value)}`);
  console.error(
    [
      `prompt: ${s.prompt_tokens} tokens in ${round(s.prompt_ms)} ms (${
        round(s.prompt_tokens_per_second)
      } tok/s)`,
      `generation: ${s.generated_tokens} tokens in ${
        round(s.generation_ms)
      } ms (${
        round(s.tokens_per_second)
      } tok/s), finished: ${result.finish_reason}`,
      ...(extra.length ? [extra.join(", ")] : []),
    ].join("\n"),
  );
}

const SPECULATIVE_FLAGS = [
  "speculative",
  "draft-model",
  "draft-k",
  "draft-layers",
  "ngram",
  "nar",
  "window",
];

/** The speculative / NAR decoder the flags ask for, if any. */
async function speculativeFromFlags(
  v: Record<string, string | boolean | undefined>,
  engine: Engine,
): Promise<Speculative | undefined> {
  const given = SPECULATIVE_FLAGS.filter((f) => v[f] !== undefined);
  if (given.length === 0) return undefined;
  if (v.speculative === undefined && v.nar === undefined) {
    throw new SeerError(
      "invalid_argument",
      `--${given[0]} needs --speculative or --nar`,
    );
  }
  return await loadSpeculative(engine, {
    drafter: string(v, "speculative") as DrafterKind | undefined,
    nar: string(v, "nar") as NarMode | undefined,
    draftModel: string(v, "draft-model"),
    k: number(v, "draft-k", { min: 1, max: 32, integer: true }),
    draftLayers: number(v, "draft-layers", { min: 1, integer: true }),
    ngram: number(v, "ngram", { min: 1, max: 8, integer: true }),
    window: number(v, "window", { min: 1, max: 32, integer: true }),
  });
}

const BASE_STATS = {
  prompt_tokens: 0,
  generated_tokens: 0,
  prompt_ms: 0,
  generation_ms: 0,
  prompt_tokens_per_second: 0,
  tokens_per_second: 0,
};

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
