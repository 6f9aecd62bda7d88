/**
 * Speculative and staged NAR decoding from options: the one entry the CLI
 * and the server use.
 *
 *   const spec = await loadSpeculative(engine, { drafter: "ngram", k: 6 });
 *   engine.generate({ prompt, maxTokens, decoder: spec.decoder });
 *   spec.dispose();
 *
 * Loading (a separate draft model, or the target again as q8_0) happens
 * once, here; each decoder then forks its own KV caches over those weights,
 * so concurrent generations never share a cache.
 */
import { SeerError } from "../errors.ts";
import type { Runtime } from "../kernels/runtime.ts";
import type { ModelFile, Vocabulary } from "../formats/types.ts";
import { readModelFile } from "../formats/load.ts";
import { LlamaModel } from "../model/llama.ts";
import type { Sampler, SamplingParams } from "../sampling/sampler.ts";
import type { Decoder } from "./decoder.ts";
import {
  checkK,
  type Drafter,
  Policy,
  SpeculativeDecoder,
  type SpeculativeOptions,
} from "./speculative.ts";
import { ModelDrafter, MultiDrafter, NgramDrafter } from "./drafters.ts";
import { FixedDrafter, JacobiDrafter, LookaheadDrafter } from "./nar.ts";

export const DRAFTERS = ["model", "q8", "layerskip", "ngram", "multi"] as const;
export type DrafterKind = typeof DRAFTERS[number];
export const NAR_MODES = ["jacobi", "lookahead", "fixed"] as const;
export type NarMode = typeof NAR_MODES[number];
type ModelKind = "model" | "q8" | "layerskip";

export interface SpeculativeSpec {
  /** Who drafts; with `nar: "fixed"` one of model, q8, layerskip. */
  drafter?: DrafterKind;
  /** A staged NAR mode instead of (or, for fixed, on top of) a drafter. */
  nar?: NarMode;
  /** Longest draft (default 6); adaptive k stays within 1..k. */
  k?: number;
  /** Draft length from recent acceptance (default: on for drafters, off for NAR). */
  adaptive?: boolean;
  /** The separate draft model: a path, or a parsed file (tests, web). */
  draftModel?: string | ModelFile;
  /** Layers the layer-skip drafter keeps (default: half the target's). */
  draftLayers?: number;
  /** Longest n-gram prompt lookup matches, or the lookahead pool's n (default 3). */
  ngram?: number;
  /** NAR window: tokens guessed per pass (default 4). */
  window?: number;
  /** The drafter's own sampling parameters (default: the target's). */
  draftSampling?: Partial<SamplingParams>;
  /** Members of `multi` (default: ngram, then model if a draft model is given, else layerskip). */
  members?: Exclude<DrafterKind, "multi">[];
  /** The target's file, for the q8 self-draft when it was not loaded from a path. */
  targetFile?: ModelFile;
  /** Verify cost of one more row relative to one step (adaptive k). */
  rowCost?: number;
}

/** What speculation needs of the engine it runs on (Engine is one). */
export interface SpeculativeTarget {
  rt: Runtime;
  model: LlamaModel;
  /** The model's path (the q8 self-draft reads it again). */
  name: string;
  tokenizer: { vocab: Vocabulary };
}

/** The per-request context the engine hands a decoder factory. */
export interface DecoderRequest {
  engine: { model: LlamaModel; stopTokens: readonly number[] };
  sampler: Pick<Sampler, "params">;
  coin: () => number;
}

export interface Speculative {
  readonly name: string;
  /** A decoder factory for GenerateRequest.decoder. */
  readonly decoder: (ctx: DecoderRequest) => Decoder;
  /** Frees the weights loaded for drafting. */
  dispose(): void;
}

export const DEFAULT_K = 6;
export const DEFAULT_WINDOW = 4;
export const DEFAULT_NGRAM = 3;

/**
 * The q8_0 matvec's time relative to f32 for the same matrix (1.71 vs
 * 3.04 ms at 32000 × 768, ../shared/TOOLCHAIN.md): a quarter of the bytes,
 * but the int8 dot products cost more per byte.
 */
const Q8_TIME_PER_WEIGHT = 0.56;

/**
 * Time of one decode step, up to a constant: weights read per token (decode
 * is bound by memory bandwidth), scaled for q8_0.
 */
export function stepCost(model: LlamaModel): number {
  const c = model.config;
  const perLayer = c.dim * (2 * c.dim + 2 * model.kvDim) +
    3 * c.dim * c.hiddenDim;
  const weights = model.nLayers * perLayer + c.vocabSize * c.dim;
  return weights * (model.quantized ? Q8_TIME_PER_WEIGHT : 1);
}

function bad(message: string): SeerError {
  return new SeerError("invalid_argument", message);
}

function intIn(
  v: number | undefined,
  name: string,
  lo: number,
  hi: number,
): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw bad(`${name} must be an integer from ${lo} to ${hi}, got ${v}`);
  }
}

/** Which drafter kinds a spec uses, after defaults; refuses bad combinations. */
function plan(spec: SpeculativeSpec, target: SpeculativeTarget): {
  kinds: ModelKind[];
  ngramUsed: boolean;
} {
  const { drafter, nar } = spec;
  if (drafter === undefined && nar === undefined) {
    throw bad(
      `choose a drafter (${DRAFTERS.join(", ")}) or a NAR mode (${
        NAR_MODES.join(", ")
      })`,
    );
  }
  if (drafter !== undefined && !DRAFTERS.includes(drafter)) {
    throw bad(
      `unknown drafter "${drafter}"; use one of ${DRAFTERS.join(", ")}`,
    );
  }
  if (nar !== undefined && !NAR_MODES.includes(nar)) {
    throw bad(`unknown NAR mode "${nar}"; use one of ${NAR_MODES.join(", ")}`);
  }
  if (spec.k !== undefined) checkK(spec.k, "k (draft length)");
  if (spec.window !== undefined) checkK(spec.window, "window");
  const L = target.model.nLayers;
  if (spec.draftLayers !== undefined) {
    if (L < 2) {
      throw bad(`the target has 1 layer: there is nothing to skip`);
    }
    intIn(spec.draftLayers, "draft layers", 1, L - 1);
  }
  intIn(spec.ngram, "ngram", nar === "lookahead" ? 2 : 1, 8);

  let kinds: ModelKind[] = [];
  let ngramUsed = false;
  if (nar === "jacobi" || nar === "lookahead") {
    if (drafter !== undefined) {
      throw bad(
        `--nar ${nar} drafts with the target itself; drop the drafter ("${drafter}")`,
      );
    }
    ngramUsed = nar === "lookahead";
  } else if (nar === "fixed") {
    const d = drafter ?? "layerskip";
    if (d !== "model" && d !== "q8" && d !== "layerskip") {
      throw bad(
        `--nar fixed drafts a block with a model: use drafter model, q8 or layerskip, not "${d}"`,
      );
    }
    kinds = [d];
  } else if (drafter === "multi") {
    const members = spec.members ??
      ["ngram", spec.draftModel !== undefined ? "model" : "layerskip"];
    if (members.length < 2) throw bad(`multi needs at least two members`);
    for (const m of members) {
      const name: string = m;
      if (!(DRAFTERS as readonly string[]).includes(name) || name === "multi") {
        throw bad(
          `unknown multi member "${m}"; use model, q8, layerskip or ngram`,
        );
      }
    }
    if (new Set(members).size !== members.length) {
      throw bad(`multi members must differ, got ${members.join(", ")}`);
    }
    ngramUsed = members.includes("ngram");
    kinds = members.filter((m): m is ModelKind => m !== "ngram");
  } else if (drafter === "ngram") {
    ngramUsed = true;
  } else if (drafter !== undefined) {
    kinds = [drafter];
  }

  // Options that would be silently ignored are refused instead.
  if (spec.draftModel !== undefined && !kinds.includes("model")) {
    throw bad(`a draft model is only used by the "model" drafter`);
  }
  if (kinds.includes("model") && spec.draftModel === undefined) {
    throw bad(`the "model" drafter needs a draft model (--draft-model PATH)`);
  }
  if (spec.draftLayers !== undefined && !kinds.includes("layerskip")) {
    throw bad(`draft layers are only used by the "layerskip" drafter`);
  }
  if (kinds.includes("layerskip") && L < 2) {
    throw bad(`the target has 1 layer: the layer-skip drafter needs 2 or more`);
  }
  if (spec.ngram !== undefined && !ngramUsed) {
    throw bad(`ngram is only used by the "ngram" drafter and --nar lookahead`);
  }
  if (spec.window !== undefined && nar === undefined) {
    throw bad(`window is for NAR modes; drafters take k (--draft-k)`);
  }
  if (spec.k !== undefined && nar !== undefined) {
    throw bad(
      `NAR modes guess a window of tokens: give window (--window), not k`,
    );
  }
  if (kinds.includes("q8") && target.model.quantized) {
    throw bad(
      `the target is already q8_0, so the q8 self-draft would be the target itself; ` +
        `use another drafter or load the target in f32`,
    );
  }
  return { kinds, ngramUsed };
}

function checkVocabulary(
  draft: ModelFile,
  target: SpeculativeTarget,
): void {
  const want = target.model.config.vocabSize;
  if (draft.config.vocabSize !== want) {
    throw bad(
      `${draft.source}: the draft model has ${draft.config.vocabSize} tokens but the target has ${want}; ` +
        `a drafter must share the target's vocabulary`,
    );
  }
  const v = draft.vocabulary;
  if (!v) return; // llama2.c checkpoints carry no vocabulary: the size must do.
  const tv = target.tokenizer.vocab;
  // Special tokens are spelled differently by the two formats ("<s>" in
  // GGUF, "\n<s>\n" in llama2.c's tokenizer.bin): only their ids must agree.
  const special = new Set([v.bosId, v.eosId, tv.bosId, tv.eosId]);
  const CONTROL = 3, UNKNOWN = 2;
  const norm = (s: string, m: string) => m === "▁" ? s.replaceAll("▁", " ") : s;
  if (v.bosId !== tv.bosId || v.eosId !== tv.eosId) {
    throw bad(
      `${draft.source}: the draft model's BOS/EOS ids (${v.bosId}/${v.eosId}) differ from the target's ` +
        `(${tv.bosId}/${tv.eosId}); a drafter must share the target's vocabulary`,
    );
  }
  for (let i = 0; i < want; i++) {
    const type = v.types?.[i] ?? tv.types?.[i];
    if (special.has(i) || type === CONTROL || type === UNKNOWN) continue;
    const a = norm(v.tokens[i], v.spaceMarker);
    const b = norm(tv.tokens[i], tv.spaceMarker);
    if (a !== b) {
      throw bad(
        `${draft.source}: token ${i} is ${
          JSON.stringify(a)
        } in the draft model but ` +
          `${
            JSON.stringify(b)
          } in the target; a drafter must share the target's vocabulary`,
      );
    }
  }
}

async function readFile(
  source: string | ModelFile,
  what: string,
): Promise<ModelFile> {
  if (typeof source !== "string") return source;
  try {
    return await readModelFile(source);
  } catch (e) {
    if (e instanceof SeerError) {
      throw new SeerError(e.code, `${what}: ${e.message}`);
    }
    throw e;
  }
}

/** Loads what the spec needs and returns a decoder factory. */
export async function loadSpeculative(
  target: SpeculativeTarget,
  spec: SpeculativeSpec,
): Promise<Speculative> {
  const { kinds } = plan(spec, target);
  const ctxLen = target.model.contextLength;
  const loaded = new Map<ModelKind, LlamaModel>();
  try {
    if (kinds.includes("model")) {
      const file = await readFile(spec.draftModel!, "draft model");
      checkVocabulary(file, target);
      loaded.set(
        "model",
        LlamaModel.load(target.rt, file, { contextLength: ctxLen }),
      );
    }
    if (kinds.includes("q8")) {
      const file = await readFile(
        spec.targetFile ?? target.name,
        "q8 self-draft (reading the target again)",
      );
      loaded.set(
        "q8",
        LlamaModel.load(target.rt, file, {
          quant: "q8_0",
          contextLength: ctxLen,
        }),
      );
    }
  } catch (e) {
    for (const m of loaded.values()) m.dispose();
    throw e;
  }
  const L = target.model.nLayers;
  const draftLayers = spec.draftLayers ?? Math.max(1, Math.floor(L / 2));
  const nar = spec.nar;
  const name = nar
    ? `nar:${nar}${nar === "fixed" ? `(${kinds[0]})` : ""}`
    : `speculative:${spec.drafter}`;

  const decoder = (ctx: DecoderRequest): Decoder => {
    const model = ctx.engine.model;
    const stops = ctx.engine.stopTokens;
    const owned: { dispose(): void }[] = [];
    const fork = (kind: ModelKind): LlamaModel => {
      const m = kind === "layerskip"
        ? model.fork(draftLayers)
        : loaded.get(kind)!.fork();
      owned.push(m);
      return m;
    };
    const cost = (m: LlamaModel) => stepCost(m) / stepCost(model);
    const policy = new Policy(spec.draftSampling ?? ctx.sampler.params);
    const modelDrafter = (kind: ModelKind): Drafter => {
      const m = fork(kind);
      return new ModelDrafter(kind, m, policy, ctx.coin, cost(m), stops);
    };
    const k = spec.k ?? DEFAULT_K;
    let drafter: Drafter;
    let options: SpeculativeOptions;
    try {
      if (nar === "jacobi" || nar === "lookahead") {
        drafter = nar === "jacobi"
          ? new JacobiDrafter()
          : new LookaheadDrafter(spec.ngram ?? DEFAULT_NGRAM);
      } else if (nar === "fixed") {
        const m = fork(kinds[0]);
        drafter = new FixedDrafter(m, cost(m), stops, kinds[0]);
      } else if (spec.drafter === "multi") {
        const members = spec.members ??
          ["ngram", spec.draftModel !== undefined ? "model" : "layerskip"];
        drafter = new MultiDrafter(
          members.map((m) =>
            m === "ngram"
              ? new NgramDrafter(spec.ngram ?? DEFAULT_NGRAM)
              : modelDrafter(m as ModelKind)
          ),
          k,
          spec.rowCost,
        );
      } else if (spec.drafter === "ngram") {
        drafter = new NgramDrafter(spec.ngram ?? DEFAULT_NGRAM);
      } else {
        drafter = modelDrafter(kinds[0]);
      }
      options = {
        k: nar ? spec.window ?? DEFAULT_WINDOW : k,
        adaptive: spec.adaptive ?? nar === undefined,
        stopTokens: stops,
        rowCost: spec.rowCost,
        name,
        owned,
      };
    } catch (e) {
      for (const o of owned) o.dispose();
      throw e;
    }
    return new SpeculativeDecoder(
      model,
      drafter,
      ctx.sampler,
      ctx.coin,
      options,
    );
  };

  return {
    name,
    decoder,
    dispose() {
      for (const m of loaded.values()) m.dispose();
      loaded.clear();
    },
  };
}
