/**
 * The page's generation worker: loads a model from bytes into the kernels
 * (a worker pool over shared memory when the page is cross-origin isolated
 * and more than one thread is asked for, else the single-thread build) and
 * runs generations off the page's thread. The page drives it with comlink;
 * callbacks carry progress and batches of streamed text.
 *
 * Generation itself is synchronous (src/generate/decoder.ts), so the loop
 * gives the event loop a turn every few tens of milliseconds: that is when
 * text goes out and a `stop()` from the page gets in.
 */
import * as Comlink from "comlink";
import { Engine, type ProgressEvent } from "../src/engine.ts";
import { parseModel } from "../src/formats/load.ts";
import type { ModelFile, Vocabulary } from "../src/formats/types.ts";
import { readTokenizerBin } from "../src/tokenizer/tokenizer_bin.ts";
import { Runtime } from "../src/kernels/runtime.ts";
import { sharedMemoryAvailable, ThreadPool } from "../src/worker/pool.ts";
import {
  type DrafterKind,
  loadSpeculative,
  type NarMode,
  type Speculative,
} from "../src/generate/setup.ts";
import type { Decoder } from "../src/generate/decoder.ts";
import { SeerError } from "../src/errors.ts";

/** Files next to this script in build/web/. */
const here = (name: string) => new URL(name, self.location.href);

export type LoadProgress =
  | { status: "download"; loaded: number; total: number }
  | ProgressEvent;

export interface LoadRequest {
  /** Bytes of a .bin or .gguf; absent = the built-in model. */
  model?: ArrayBuffer;
  modelName?: string;
  /** A llama2.c tokenizer.bin, needed with a .bin model. */
  tokenizer?: ArrayBuffer;
  threads: number;
  /** Passed to the pool (products below it stay on one thread). */
  minWork?: number;
}

export interface LoadResult {
  name: string;
  dim: number;
  layers: number;
  vocab: number;
  context: number;
  /** Whether the weights live in shared memory that several threads use. */
  sharedMemory: boolean;
  threads: number;
  crossOriginIsolated: boolean;
}

export interface GenerateRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  /** "none", a drafter (ngram, layerskip, q8) or a NAR mode (jacobi, lookahead). */
  drafter: string;
  draftK: number;
}

/** What the page hears while a generation runs (and once at the end). */
export interface GenerateUpdate {
  text: string;
  tokens: number;
  tokensPerSecond: number;
  /** Tokens each target pass produced since the last update (speculative). */
  steps: number[];
  acceptanceRate: number | null;
  done: boolean;
  finishReason?: string;
  /** Products the pool split between threads, and those it kept on one. */
  split: number;
  alone: number;
}

const DRAFTER_KINDS = ["ngram", "layerskip", "q8"];
const NAR_KINDS = ["jacobi", "lookahead"];

let engine: Engine | null = null;
let pool: ThreadPool | null = null;
let modelFile: ModelFile | null = null;
let abort: AbortController | null = null;

/** Fetches one of the built-in files, reporting bytes as they arrive. */
async function download(
  name: string,
  onProgress: (e: LoadProgress) => void,
): Promise<Uint8Array> {
  const res = await fetch(here(name));
  if (!res.ok || !res.body) {
    throw new SeerError(
      "invalid_model",
      `cannot fetch ${name}: HTTP ${res.status}`,
    );
  }
  const total = Number(res.headers.get("content-length")) || 0;
  const parts: Uint8Array[] = [];
  let loaded = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    loaded += value.length;
    onProgress({ status: "download", loaded, total });
  }
  const out = new Uint8Array(loaded);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function unload(): Promise<void> {
  abort?.abort();
  engine?.dispose();
  engine = null;
  modelFile = null;
  await pool?.dispose();
  pool = null;
}

const api = {
  async load(
    req: LoadRequest,
    onProgress: (e: LoadProgress) => void,
  ): Promise<LoadResult> {
    await unload();
    let modelBytes: Uint8Array, tokenizerBytes: Uint8Array | undefined;
    let name = req.modelName ?? "model";
    if (req.model) {
      modelBytes = new Uint8Array(req.model);
      if (req.tokenizer) tokenizerBytes = new Uint8Array(req.tokenizer);
    } else {
      name = "stories260K.bin";
      modelBytes = await download("models/stories260K.bin", onProgress);
      tokenizerBytes = await download("models/tok512.bin", onProgress);
    }
    const model = parseModel(modelBytes, name);
    let vocabulary: Vocabulary | undefined = model.vocabulary;
    if (!vocabulary) {
      if (!tokenizerBytes) {
        throw new SeerError(
          "invalid_argument",
          `${name} is a llama2.c checkpoint: choose its tokenizer.bin as well`,
        );
      }
      vocabulary = readTokenizerBin(tokenizerBytes, "tokenizer.bin");
    }
    const threads = Math.max(1, Math.floor(req.threads));
    if (threads > 1 && sharedMemoryAvailable()) {
      pool = await ThreadPool.create({
        threads,
        wasm: here("seer-threads.wasm"),
        workerUrl: here("kernel-worker.js"),
        minWork: req.minWork,
      });
    }
    const runtime = pool?.runtime ??
      await Runtime.load({ wasm: here("seer.wasm") });
    engine = await Engine.load({
      files: { model, vocabulary },
      runtime,
      onProgress,
    });
    modelFile = model;
    const c = model.config;
    return {
      name,
      dim: c.dim,
      layers: c.nLayers,
      vocab: c.vocabSize,
      context: engine.model.contextLength,
      sharedMemory: pool !== null,
      threads: pool?.threads ?? 1,
      crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean })
        .crossOriginIsolated ===
        true,
    };
  },

  async generate(
    req: GenerateRequest,
    onUpdate: (u: GenerateUpdate) => void,
  ): Promise<void> {
    if (!engine || !modelFile) {
      throw new SeerError("invalid_argument", "load a model first");
    }
    // Made before any await, so a stop() during setup counts too.
    abort = new AbortController();
    const signal = abort.signal;
    let spec: Speculative | undefined;
    if (req.drafter !== "none") {
      const isNar = NAR_KINDS.includes(req.drafter);
      if (!isNar && !DRAFTER_KINDS.includes(req.drafter)) {
        throw new SeerError(
          "invalid_argument",
          `unknown drafter "${req.drafter}"; choose none, ${
            [...DRAFTER_KINDS, ...NAR_KINDS].join(", ")
          }`,
        );
      }
      spec = await loadSpeculative(engine, {
        drafter: isNar ? undefined : req.drafter as DrafterKind,
        nar: isNar ? req.drafter as NarMode : undefined,
        k: req.draftK,
        targetFile: modelFile,
      });
    }
    let steps: number[] = [];
    let decoder: Decoder | undefined;
    const run = engine.generate({
      prompt: req.prompt,
      maxTokens: req.maxTokens,
      sampling: {
        temperature: req.temperature,
        topP: req.topP,
        topK: req.topK,
      },
      seed: req.seed,
      signal,
      decoder: spec
        ? (ctx) => {
          decoder = spec!.decoder(ctx);
          // Count the tokens each target pass yields: the accepted length.
          const next = decoder.next.bind(decoder);
          decoder.next = (context, max) => {
            const out = next(context, max);
            steps.push(out.length);
            return out;
          };
          return decoder;
        }
        : undefined,
    });
    let text = "", tokens = 0, first = 0;
    const update = (done: boolean, finishReason?: string, tps?: number) => {
      // Live: tokens after the first over the time since it (the first
      // waits for the prompt); at the end, the loop's own figure.
      const elapsed = performance.now() - first;
      const rate = decoder?.stats().acceptance_rate;
      onUpdate({
        text,
        tokens,
        tokensPerSecond: tps ??
          (tokens > 1 && elapsed > 0 ? (tokens - 1) / (elapsed / 1000) : 0),
        steps,
        acceptanceRate: rate === undefined ? null : rate,
        done,
        finishReason,
        split: pool?.counts.split ?? 0,
        alone: pool?.counts.alone ?? 0,
      });
      text = "";
      steps = [];
    };
    try {
      let last = performance.now();
      for (;;) {
        const step = run.next();
        if (step.done) {
          const { stats, finish_reason } = step.value;
          tokens = stats.generated_tokens;
          update(true, finish_reason, stats.tokens_per_second);
          return;
        }
        if (step.value.token !== null) {
          if (tokens === 0) first = performance.now();
          tokens++;
        }
        text += step.value.text;
        const now = performance.now();
        if (now - last > 30) {
          update(false);
          // A turn of the event loop: lets a stop() in.
          await new Promise((r) => setTimeout(r, 0));
          last = performance.now();
        }
      }
    } finally {
      run.return(undefined as never);
      spec?.dispose();
      abort = null;
    }
  },

  stop(): void {
    abort?.abort();
  },

  unload,
};

export type GenerateWorker = typeof api;

Comlink.expose(api);
