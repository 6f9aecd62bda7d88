/**
 * The configuration of an image model (a DiT over patches) and of its
 * diffusion, as stored in a checkpoint's config.json, with the checks that
 * turn a wrong file into a clear error.
 */
import { SeerError } from "../errors.ts";

export interface DiTConfig {
  /** Side of the square image in pixels (14 for the base, 28 for super-resolution). */
  imageSize: number;
  /** Input channels: 1 (the noisy image) or 2 (plus an upsampled low-res image). */
  channels: number;
  /** Side of a patch; imageSize / patch patches per side, one token each. */
  patch: number;
  /** Width of the residual stream. */
  dim: number;
  /** Transformer blocks. */
  depth: number;
  /** Attention heads; dim / heads must be a multiple of 4 (the SIMD width). */
  heads: number;
  /** Hidden width of the MLP = mlpRatio · dim. */
  mlpRatio: number;
  /** Sinusoidal timestep features fed to the timestep MLP (even). */
  freqDim: number;
  /** Class labels 0..classes−1; the label `classes` means "no class" (CFG). */
  classes: number;
}

export type ScheduleKind = "linear" | "cosine";

export interface DiffusionConfig {
  /** β schedule: linear 1e-4..0.02 (DDPM) or cosine (Nichol & Dhariwal). */
  schedule: ScheduleKind;
  /** Diffusion steps T. */
  steps: number;
}

/** What a model is for: a base generator or a super-resolution stage. */
export type ModelRole = "base" | "superres" | "classifier";

export interface ImageModelConfig {
  format: "seer-image";
  version: 1;
  role: "base" | "superres";
  model: DiTConfig;
  diffusion: DiffusionConfig;
  /** For superres: the side of the low-res input it upsamples (14). */
  lowResSize?: number;
}

export const FORMAT = "seer-image";
export const VERSION = 1;

export function tokensOf(c: DiTConfig): number {
  const g = c.imageSize / c.patch;
  return g * g;
}

function bad(what: string, fix: string): never {
  throw new SeerError("invalid_model", `image model config: ${what}. ${fix}`);
}

function int(
  obj: Record<string, unknown>,
  key: string,
  lo: number,
  hi: number,
): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi) {
    bad(
      `"${key}" must be an integer in [${lo}, ${hi}], found ${
        JSON.stringify(v)
      }`,
      "Fix the value or retrain with a valid configuration.",
    );
  }
  return v;
}

/** Checks a DiT configuration's internal consistency; returns it typed. */
export function validateDiT(raw: unknown): DiTConfig {
  if (typeof raw !== "object" || raw === null) {
    bad(
      '"model" must be an object',
      "Use the config.json written by train-image.",
    );
  }
  const o = raw as Record<string, unknown>;
  const c: DiTConfig = {
    imageSize: int(o, "imageSize", 2, 256),
    channels: int(o, "channels", 1, 2),
    patch: int(o, "patch", 1, 16),
    dim: int(o, "dim", 4, 1024),
    depth: int(o, "depth", 1, 32),
    heads: int(o, "heads", 1, 64),
    mlpRatio: int(o, "mlpRatio", 1, 8),
    freqDim: int(o, "freqDim", 2, 1024),
    classes: int(o, "classes", 1, 1000),
  };
  if (c.imageSize % c.patch !== 0) {
    bad(
      `imageSize ${c.imageSize} is not a multiple of patch ${c.patch}`,
      "Pick a patch size that divides the image side.",
    );
  }
  if (c.dim % c.heads !== 0 || (c.dim / c.heads) % 4 !== 0) {
    bad(
      `dim ${c.dim} / heads ${c.heads} must be a whole multiple of 4`,
      "Pick heads so that each head's width is 4, 8, 12, …",
    );
  }
  if (c.dim % 4 !== 0) {
    bad(`dim ${c.dim} is not a multiple of 4`, "Use e.g. 64, 96 or 128.");
  }
  if (c.freqDim % 2 !== 0) {
    bad(`freqDim ${c.freqDim} is odd`, "Use an even number such as 64.");
  }
  return c;
}

export function validateDiffusion(raw: unknown): DiffusionConfig {
  if (typeof raw !== "object" || raw === null) {
    bad(
      '"diffusion" must be an object',
      "Use the config.json written by train-image.",
    );
  }
  const o = raw as Record<string, unknown>;
  if (o.schedule !== "linear" && o.schedule !== "cosine") {
    bad(
      `"schedule" must be "linear" or "cosine", found ${
        JSON.stringify(o.schedule)
      }`,
      "Fix config.json.",
    );
  }
  return { schedule: o.schedule, steps: int(o, "steps", 2, 100000) };
}

/** Parses and checks a whole config.json (already JSON-decoded). */
export function validateImageConfig(
  raw: unknown,
  source = "config",
): ImageModelConfig {
  if (typeof raw !== "object" || raw === null) {
    throw new SeerError("invalid_model", `${source}: not a JSON object`);
  }
  const o = raw as Record<string, unknown>;
  if (o.format !== FORMAT) {
    throw new SeerError(
      "invalid_model",
      `${source}: format is ${
        JSON.stringify(o.format)
      }, expected "${FORMAT}". ` +
        `Point --model at a directory written by \`deno task cli train-image\`.`,
    );
  }
  if (o.version !== VERSION) {
    throw new SeerError(
      "invalid_model",
      `${source}: version ${
        JSON.stringify(o.version)
      }, this build reads version ${VERSION}`,
    );
  }
  if (o.role !== "base" && o.role !== "superres") {
    throw new SeerError(
      "invalid_model",
      `${source}: role must be "base" or "superres", found ${
        JSON.stringify(o.role)
      }`,
    );
  }
  const model = validateDiT(o.model);
  const diffusion = validateDiffusion(o.diffusion);
  const cfg: ImageModelConfig = {
    format: FORMAT,
    version: VERSION,
    role: o.role,
    model,
    diffusion,
  };
  if (o.role === "superres") {
    cfg.lowResSize = int(o, "lowResSize", 1, model.imageSize);
    if (model.channels !== 2) {
      bad(
        "a superres model needs channels = 2 (noisy image + low-res)",
        "Fix config.json.",
      );
    }
  } else if (model.channels !== 1) {
    bad("a base model has channels = 1", "Fix config.json.");
  }
  return cfg;
}
