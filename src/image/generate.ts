/**
 * Class-conditional digit generation, staged: a base model samples 14×14
 * digits, every patch at once, step by step; a super-resolution model then
 * samples 28×28 digits conditioned on the base samples upsampled 2× (plus a
 * little noise, as in training). Classifier-free guidance mixes the
 * conditional and unconditional noise predictions of one batched forward:
 *   ε = ε_uncond + w · (ε_cond − ε_uncond)   (w = 1: plain conditional).
 * All noise comes from the WASM PRNG seeded with `seed`: the same options
 * give the same images, bit for bit.
 *
 *   const { images } = await generateImages({ base, superres, classes: [7, 7], seed: 1 });
 */
import { SeerError } from "../errors.ts";
import type { ImageModel } from "./checkpoint.ts";
import { checkSteps, sample } from "./diffusion.ts";
import { upsample2 } from "./resample.ts";
import { Rng } from "./rng.ts";

export interface StepEvent {
  stage: "base" | "superres";
  /** 1-based step within the stage, and the stage's step count. */
  step: number;
  steps: number;
  /** Side of the images of this stage. */
  size: number;
  /** Current estimate of every clean image, values in [0, 1], size² each. */
  images: Float32Array[];
}

export interface GenerateOptions {
  base: ImageModel;
  /** When given, the cascade's second stage (28×28). */
  superres?: ImageModel;
  /** The digit wanted for each image (0..9); its length is the image count. */
  classes: number[];
  sampler?: "ddpm" | "ddim";
  /** DDIM steps per stage (DDPM always runs all of the schedule's steps). */
  steps?: number;
  eta?: number;
  /** Classifier-free guidance scale w (0 = unconditional, 1 = no guidance). */
  guidance?: number;
  /** Guidance for the super-resolution stage (default: the same). */
  superresGuidance?: number;
  /** Std of the noise added to the upsampled base images (default 0.05). */
  condNoise?: number;
  seed?: number;
  /** Images per forward pass (memory bound; default 64). */
  batchSize?: number;
  /** Called (and awaited) after every denoising step of every stage. */
  onStep?: (e: StepEvent) => void | Promise<void>;
  /** Stops generation between steps (a SeerError with code "aborted"). */
  signal?: AbortSignal;
}

export interface GeneratedImages {
  size: number;
  /** One array of size² floats in [0, 1] per image. */
  images: Float32Array[];
  /** The base stage's output (14×14), also in [0, 1]. */
  baseImages: Float32Array[];
}

/** The largest number of images one call may ask for. */
export const MAX_IMAGES = 4096;
/** Largest guidance scale accepted (beyond it samples saturate to noise). */
export const MAX_GUIDANCE = 50;

function checkOptions(o: GenerateOptions): void {
  const bad = (msg: string): never => {
    throw new SeerError("invalid_argument", msg);
  };
  const nc = o.base.config.model.classes;
  if (!Array.isArray(o.classes) || o.classes.length === 0) {
    bad("ask for at least one image (--n ≥ 1)");
  }
  if (o.classes.length > MAX_IMAGES) {
    bad(`at most ${MAX_IMAGES} images per call, asked for ${o.classes.length}`);
  }
  for (const c of o.classes) {
    if (!Number.isInteger(c) || c < 0 || c >= nc) {
      bad(
        `unknown class ${c}: the model knows classes 0..${nc - 1} (the digits)`,
      );
    }
  }
  const g = o.guidance ?? 1;
  if (!Number.isFinite(g) || g < 0 || g > MAX_GUIDANCE) {
    bad(`guidance must be in [0, ${MAX_GUIDANCE}], got ${g}`);
  }
  const eta = o.eta ?? 0;
  if (!Number.isFinite(eta) || eta < 0 || eta > 1) {
    bad(`eta must be in [0, 1], got ${eta}`);
  }
  const seed = o.seed ?? 0;
  if (!Number.isSafeInteger(seed) || seed < 0) {
    bad(`seed must be a non-negative integer, got ${seed}`);
  }
  const bs = o.batchSize ?? 64;
  if (!Number.isInteger(bs) || bs < 1 || bs > 1024) {
    bad(`batchSize must be in [1, 1024], got ${bs}`);
  }
  checkSteps(o.sampler ?? "ddim", o.steps ?? 20, o.base.schedule.T);
  if (o.superres) {
    checkSteps(o.sampler ?? "ddim", o.steps ?? 20, o.superres.schedule.T);
    const sr = o.superres.config;
    if (
      sr.role !== "superres" || sr.lowResSize !== o.base.config.model.imageSize
    ) {
      bad(
        `the super-resolution model at ${o.superres.dir} takes ${sr.lowResSize}×${sr.lowResSize} inputs, ` +
          `the base model makes ${o.base.config.model.imageSize}×${o.base.config.model.imageSize}`,
      );
    }
  }
  if (o.base.config.role !== "base") {
    bad(`${o.base.dir} is a ${o.base.config.role} model, not a base model`);
  }
}

const toUnit = (x: Float32Array) =>
  x.map((v) => Math.min(1, Math.max(0, (v + 1) / 2)));

/** Runs one stage for a batch of labels; `cond` is the low-res channel for superres. */
function runStage(
  m: ImageModel,
  labels: number[],
  cond: Float32Array | undefined,
  guidance: number,
  o: GenerateOptions,
  rng: Rng,
  onStep: (
    step: number,
    steps: number,
    x0: Float32Array,
  ) => void | Promise<void>,
): Promise<Float32Array> {
  const B = labels.length, S = m.config.model.imageSize, px = S * S;
  const C = m.config.model.channels, nullLabel = m.config.model.classes;
  // Rows: B conditional, then B unconditional when guidance ≠ 1.
  const guided = guidance !== 1;
  const rows = guided ? 2 * B : B;
  const lab = new Int32Array(rows);
  for (let j = 0; j < B; j++) {
    lab[j] = guidance === 0 ? nullLabel : labels[j];
    if (guided) lab[B + j] = nullLabel;
  }
  const input = new Float32Array(rows * C * px);
  const eps = (x: Float32Array, t: number): Float32Array => {
    for (let r = 0; r < rows; r++) {
      const j = r % B;
      input.set(x.subarray(j * px, (j + 1) * px), r * C * px);
      if (cond) input.set(cond.subarray(j * px, (j + 1) * px), r * C * px + px);
    }
    const e = m.dit.forward(input, new Int32Array(rows).fill(t), lab, rows);
    if (!guided || guidance === 0) return e.subarray(0, B * px);
    const out = new Float32Array(B * px);
    for (let i = 0; i < B * px; i++) {
      const eu = e[B * px + i];
      out[i] = eu + guidance * (e[i] - eu);
    }
    return out;
  };
  return sample(m.schedule, eps, B * px, {
    sampler: o.sampler ?? "ddim",
    steps: o.steps ?? 20,
    eta: o.eta ?? 0,
    normal: (n) => rng.normal(n),
    signal: o.signal,
    onStep: (p) => onStep(p.step, p.steps, p.x0),
  });
}

/** Generates one digit image per entry of `classes` (see the module comment). */
export async function generateImages(
  o: GenerateOptions,
): Promise<GeneratedImages> {
  checkOptions(o);
  const rt = o.base.dit.rt;
  const rng = new Rng(rt, o.seed ?? 0);
  const bs = o.batchSize ?? 64;
  const baseS = o.base.config.model.imageSize;
  const images: Float32Array[] = [], baseImages: Float32Array[] = [];
  const split = (x: Float32Array, n: number, s: number) =>
    Array.from(
      { length: n },
      (_, j) => toUnit(x.subarray(j * s * s, (j + 1) * s * s)),
    );
  try {
    for (let start = 0; start < o.classes.length; start += bs) {
      const labels = o.classes.slice(start, start + bs), B = labels.length;
      const low = await runStage(
        o.base,
        labels,
        undefined,
        o.guidance ?? 1,
        o,
        rng,
        (step, steps, x0) =>
          o.onStep?.({
            stage: "base",
            step,
            steps,
            size: baseS,
            images: split(x0, B, baseS),
          }),
      );
      baseImages.push(...split(low, B, baseS));
      if (!o.superres) {
        images.push(...split(low, B, baseS));
        continue;
      }
      const S = o.superres.config.model.imageSize;
      const up = upsample2(low, B, baseS);
      const sigma = o.condNoise ?? 0.05;
      if (sigma > 0) {
        const z = rng.normal(up.length);
        for (let i = 0; i < up.length; i++) up[i] += sigma * z[i];
      }
      const high = await runStage(
        o.superres,
        labels,
        up,
        o.superresGuidance ?? o.guidance ?? 1,
        o,
        rng,
        (step, steps, x0) =>
          o.onStep?.({
            stage: "superres",
            step,
            steps,
            size: S,
            images: split(x0, B, S),
          }),
      );
      images.push(...split(high, B, S));
    }
  } finally {
    rng.free();
  }
  return {
    size: o.superres ? o.superres.config.model.imageSize : baseS,
    images,
    baseImages,
  };
}
