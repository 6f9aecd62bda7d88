/**
 * seer's one entry point for text generation: `Engine.load(...)` reads a
 * model and its tokenizer, puts the weights into WASM memory and returns an
 * engine whose `generate` runs any decoding strategy through the shared
 * loop. The CLI, the server and the workers all go through here.
 *
 *   const engine = await Engine.load({ onProgress: console.log });
 *   const run = engine.generate({ prompt: "Once upon a time", maxTokens: 50 });
 *   for (const { text } of iterate(run)) write(text);
 */
import { Runtime } from "./kernels/runtime.ts";
import { LlamaModel } from "./model/llama.ts";
import { loadModelFiles } from "./formats/load.ts";
import type { ModelFile, Vocabulary } from "./formats/types.ts";
import { DecodeStream, Tokenizer } from "./tokenizer/bpe.ts";
import { Sampler, type SamplingParams } from "./sampling/sampler.ts";
import { Rng } from "./sampling/rng.ts";
import { ArDecoder, type TopLogits } from "./generate/ar.ts";
import {
  type Decoder,
  type GenerationResult,
  runLoop,
  type TokenEvent,
} from "./generate/decoder.ts";
import { SeerError } from "./errors.ts";

/** The built-in model: stories260K with its 512-token tokenizer. */
export const BUILTIN_MODEL = new URL(
  "../models/stories260K.bin",
  import.meta.url,
);
export const BUILTIN_TOKENIZER = new URL(
  "../models/tok512.bin",
  import.meta.url,
);

export type ProgressEvent =
  | { status: "initiate"; model: string }
  | { status: "read"; model: string; format: string }
  | { status: "upload"; model: string; bytes: number }
  | { status: "ready"; model: string; ms: number };

export interface EngineOptions {
  /** A model file path (llama2.c .bin or GGUF); the built-in model if absent. */
  model?: string;
  /** A llama2.c tokenizer.bin (needed for llama2.c models). */
  tokenizer?: string;
  /** Or an already parsed model and vocabulary (web, edge, tests). */
  files?: { model: ModelFile; vocabulary: Vocabulary };
  /** Quantize f32 matrices to q8_0 at load. */
  quant?: "q8_0";
  /** Override the model's context length. */
  contextLength?: number;
  /** A runtime to share (several models in one memory); one is made if absent. */
  runtime?: Runtime;
  onProgress?: (event: ProgressEvent) => void;
}

export interface GenerateRequest {
  /** Text (encoded with BOS) or token ids (used as they are). */
  prompt: string | number[];
  maxTokens: number;
  sampling?: Partial<SamplingParams>;
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** Record the k highest logits at positions 0..steps-1. */
  topLogits?: { k: number; steps: number };
  /**
   * Makes the decoder (speculative, NAR, …); plain AR when absent. Gets the
   * engine, the request's sampler and its coin.
   */
  decoder?: (ctx: DecoderContext) => Decoder;
}

export interface DecoderContext {
  engine: Engine;
  sampler: Sampler;
  coin: () => number;
}

export interface GenerateResult extends GenerationResult {
  top_logits?: TopLogits[];
}

function pathOf(url: URL): string {
  return decodeURIComponent(url.pathname);
}

export class Engine {
  #disposed = false;

  private constructor(
    readonly rt: Runtime,
    readonly model: LlamaModel,
    readonly tokenizer: Tokenizer,
    readonly name: string,
  ) {}

  static async load(options: EngineOptions = {}): Promise<Engine> {
    const t0 = performance.now();
    const builtin = options.model === undefined && options.files === undefined;
    const modelPath = options.model ?? pathOf(BUILTIN_MODEL);
    const name = options.files?.model.source ?? modelPath;
    options.onProgress?.({ status: "initiate", model: name });
    const files = options.files ?? await loadModelFiles(modelPath, {
      tokenizer: options.tokenizer ??
        (builtin ? pathOf(BUILTIN_TOKENIZER) : undefined),
      contextLength: options.contextLength,
    });
    options.onProgress?.({
      status: "read",
      model: name,
      format: files.model.format,
    });
    const rt = options.runtime ?? await Runtime.load();
    const before = rt.allocator.liveBytes;
    const model = LlamaModel.load(rt, files.model, {
      quant: options.quant,
      contextLength: options.contextLength,
    });
    options.onProgress?.({
      status: "upload",
      model: name,
      bytes: rt.allocator.liveBytes - before,
    });
    const engine = new Engine(
      rt,
      model,
      new Tokenizer(files.vocabulary),
      name,
    );
    options.onProgress?.({
      status: "ready",
      model: name,
      ms: performance.now() - t0,
    });
    return engine;
  }

  /**
   * Another engine over the same weights and tokenizer with its own KV
   * cache: one per concurrent generation (server slots, drafters).
   */
  fork(): Engine {
    return new Engine(this.rt, this.model.fork(), this.tokenizer, this.name);
  }

  /** Prompt text to ids, BOS first (as the model was trained). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { bos: true });
  }

  /** Ids that end generation: EOS, and BOS as llama2.c treats it. */
  get stopTokens(): number[] {
    const v = this.tokenizer.vocab;
    return [v.eosId, v.bosId];
  }

  /**
   * Starts a generation. Iterate the returned generator for tokens as they
   * come; its return value is the full result. Nothing runs until the
   * first `next()`.
   */
  *generate(
    req: GenerateRequest,
  ): Generator<TokenEvent, GenerateResult, void> {
    if (this.#disposed) throw new SeerError("internal", "engine disposed");
    const prompt = typeof req.prompt === "string"
      ? this.encode(req.prompt)
      : [...req.prompt];
    const sampler = new Sampler(req.sampling);
    const rng = new Rng(this.rt, req.seed ?? 0);
    const coin = () => rng.uniform();
    const rows: TopLogits[] = [];
    const top = req.topLogits ? { ...req.topLogits, rows } : undefined;
    const decoder: Decoder = req.decoder
      ? req.decoder({ engine: this, sampler, coin })
      : new ArDecoder(this.model, sampler, coin, top);
    const stream = new DecodeStream(this.tokenizer);
    try {
      const result: GenerateResult = yield* runLoop({
        decoder,
        prompt,
        maxTokens: req.maxTokens,
        contextLength: this.model.contextLength,
        stopTokens: this.stopTokens,
        stopStrings: req.stop,
        detokenize: (prev, token) => stream.next(prev, token),
        flush: () => stream.flush(),
        accept: (token) => sampler.accept(token),
        signal: req.signal,
      });
      if (top) result.top_logits = rows;
      return result;
    } finally {
      decoder.dispose?.();
      rng.dispose();
    }
  }

  /** Runs a generation to the end and returns its result. */
  complete(req: GenerateRequest): GenerateResult {
    const it = this.generate(req);
    for (;;) {
      const r = it.next();
      if (r.done) return r.value;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.model.dispose();
  }
}
