/**
 * Where a request's `speculative` object (or the server's `--speculative`
 * default) becomes the engine's `req.decoder`: `Drafters.decoderFor`.
 *
 * Drafters that need no weights of their own (ngram, layerskip, and multi
 * built from those two) are set up per request, with the request's k.
 * Drafters that load weights (model: a separate draft model; q8: the target
 * again in q8_0; multi including a draft model) are loaded once, at start,
 * and only when the server was started with that drafter: a request cannot
 * make the server load a model. Their k is the one they were loaded with,
 * because the decoder factory takes k at load time.
 */
import type { Engine, GenerateRequest } from "../engine.ts";
import { SeerError } from "../errors.ts";
import { loadSpeculative, type Speculative } from "../generate/setup.ts";
import { ApiError } from "./errors.ts";
import type { SpeculativeSpec } from "./params.ts";

export interface DraftConfig {
  /** The drafter for requests that do not name one (`--speculative`, `--draft-k`). */
  default?: SpeculativeSpec;
  /** The separate draft model for the "model" drafter (`--draft-model`). */
  draftModel?: string;
  /** Layers the layerskip drafter keeps (`--draft-layers`). */
  draftLayers?: number;
}

function fromSeer(e: unknown): unknown {
  if (e instanceof SeerError && e.code === "invalid_argument") {
    return new ApiError(400, "invalid_value", e.message, "speculative");
  }
  return e;
}

export class Drafters {
  /** The one weight-loading drafter this server has, if any. */
  #loaded?: { spec: SpeculativeSpec; speculative: Speculative };

  private constructor(readonly engine: Engine, readonly config: DraftConfig) {}

  /** Checks the configuration and loads the default drafter's weights if it has any. */
  static async load(engine: Engine, config: DraftConfig): Promise<Drafters> {
    const d = new Drafters(engine, config);
    if (
      config.draftModel !== undefined && config.default?.drafter !== "model" &&
      config.default?.drafter !== "multi"
    ) {
      throw new SeerError(
        "invalid_argument",
        `a draft model is only used with --speculative model or multi`,
      );
    }
    const spec = config.default;
    if (spec) {
      const speculative = await loadSpeculative(engine, d.#full(spec));
      if (d.#heavy(spec.drafter)) d.#loaded = { spec, speculative };
      else speculative.dispose();
    }
    return d;
  }

  /** Whether this drafter loads weights of its own. */
  #heavy(drafter: SpeculativeSpec["drafter"]): boolean {
    return drafter === "model" || drafter === "q8" ||
      (drafter === "multi" && this.config.draftModel !== undefined);
  }

  /** The spec with the server's drafting options for the drafters that use them. */
  #full(spec: SpeculativeSpec) {
    const { draftModel, draftLayers } = this.config;
    const withModel = spec.drafter === "model" ||
      (spec.drafter === "multi" && draftModel !== undefined);
    const withLayers = spec.drafter === "layerskip" ||
      (spec.drafter === "multi" && draftModel === undefined);
    return {
      drafter: spec.drafter,
      k: spec.k,
      draftModel: withModel ? draftModel : undefined,
      draftLayers: withLayers ? draftLayers : undefined,
    };
  }

  /** The decoder factory for a request: undefined for plain decoding. */
  async decoderFor(
    spec: SpeculativeSpec | null | undefined,
  ): Promise<GenerateRequest["decoder"]> {
    const chosen = spec === undefined ? this.config.default : spec;
    if (!chosen) return undefined;
    if (this.#heavy(chosen.drafter)) {
      const loaded = this.#loaded;
      if (!loaded || loaded.spec.drafter !== chosen.drafter) {
        throw new ApiError(
          400,
          "unsupported_value",
          `the "${chosen.drafter}" drafter loads weights, and this server was not started with it; ` +
            `use "ngram" or "layerskip", or start the server with --speculative ${chosen.drafter}`,
          "speculative.drafter",
        );
      }
      if (chosen.k !== undefined && chosen.k !== loaded.spec.k) {
        throw new ApiError(
          400,
          "unsupported_value",
          `the "${chosen.drafter}" drafter on this server drafts ${
            loaded.spec.k ?? "the default number of"
          } tokens (--draft-k); leave "k" out${
            loaded.spec.k ? ` or send ${loaded.spec.k}` : ""
          }`,
          "speculative.k",
        );
      }
      return loaded.speculative.decoder;
    }
    // No weights to load: set up per request, so the request's k applies.
    try {
      const speculative = await loadSpeculative(
        this.engine,
        this.#full(chosen),
      );
      return speculative.decoder;
    } catch (e) {
      throw fromSeer(e);
    }
  }

  dispose(): void {
    this.#loaded?.speculative.dispose();
    this.#loaded = undefined;
  }
}
