/**
 * Scoring generated digits the way text-to-image agreement is scored (as
 * CLIP score does, with the classifier as the judge):
 * - class agreement: the share of generated images the classifier assigns
 *   to the digit that was asked for;
 * - Fréchet distance between the classifier's penultimate features of the
 *   generated images and of the held-out MNIST images (at 28×28; base-only
 *   14×14 samples are upsampled 2× bilinearly first, as the cascade does).
 *
 *   deno run -A src/image/evaluate.ts [--n 500] [--n-small 50] [--only ddpm] [--json out.json]
 *
 * The Fréchet distance of a finite sample is biased upwards, more so for
 * fewer images, so settings are compared at equal counts, and each count's
 * floor (held-out images against the rest of the held-out set) is printed.
 */
import { SeerError } from "../errors.ts";
import { Runtime } from "../kernels/runtime.ts";
import { type ImageModel, loadImageModel } from "./checkpoint.ts";
import { agreement, Classifier } from "./classifier.ts";
import { frechetBetween } from "./frechet.ts";
import { generateImages, type GenerateOptions } from "./generate.ts";
import { loadMnist } from "./mnist.ts";
import { upsample2 } from "./resample.ts";

export interface EvalSetting {
  name: string;
  sampler: "ddim" | "ddpm";
  steps: number;
  guidance: number;
  /** Whether the super-resolution stage runs (else base-only, upsampled). */
  cascade: boolean;
  /** Guidance of the super-resolution stage (default: guidance). */
  superresGuidance?: number;
  /** Noise added to the upsampled base images (generateImages' default if absent). */
  condNoise?: number;
}

export interface EvalResult extends EvalSetting {
  images: number;
  agreement: number;
  frechet: number;
  seconds: number;
}

/** Images (n × size², values in [0, 1]) → 28×28 for the classifier. */
export function to28(images: Float32Array[], size: number): Float32Array {
  const flat = new Float32Array(images.length * size * size);
  images.forEach((im, i) => flat.set(im, i * size * size));
  if (size === 28) return flat;
  if (size !== 14) {
    throw new SeerError(
      "invalid_argument",
      `cannot score ${size}×${size} images`,
    );
  }
  // Upsampled in [−1, 1] as the cascade does, then back to [0, 1].
  const up = upsample2(flat.map((v) => 2 * v - 1), images.length, 14);
  return up.map((v) => (v + 1) / 2);
}

/** Generates n images (classes cycling 0..9) under a setting and scores them. */
export async function evaluateSetting(
  s: EvalSetting,
  models: { base: ImageModel; superres: ImageModel },
  judge: Classifier,
  reference: Float32Array,
  referenceCount: number,
  n: number,
  seed: number,
): Promise<EvalResult> {
  const classes = Array.from({ length: n }, (_, i) => i % 10);
  const t0 = performance.now();
  const opts: GenerateOptions = {
    base: models.base,
    superres: s.cascade ? models.superres : undefined,
    classes,
    sampler: s.sampler,
    steps: s.steps,
    guidance: s.guidance,
    superresGuidance: s.superresGuidance,
    condNoise: s.condNoise,
    seed,
    batchSize: 50,
  };
  const out = await generateImages(opts);
  const seconds = (performance.now() - t0) / 1000;
  const x = to28(out.images, out.size);
  const { labels, features } = judge.classify(x, n);
  const dim = judge.config.widths[2];
  return {
    ...s,
    images: n,
    agreement: agreement(labels, classes),
    frechet: frechetBetween(features, n, reference, referenceCount, dim),
    seconds,
  };
}

/** The settings reported; `small` ones use the smaller count (DDPM-1000 is slow). */
export const DEFAULT_SETTINGS: (EvalSetting & { small?: boolean })[] = [
  {
    name: "DDIM-20, w = 1 (no guidance)",
    sampler: "ddim",
    steps: 20,
    guidance: 1,
    cascade: true,
  },
  {
    name: "DDIM-20, w = 2",
    sampler: "ddim",
    steps: 20,
    guidance: 2,
    cascade: true,
  },
  {
    name: "DDIM-20, w = 3",
    sampler: "ddim",
    steps: 20,
    guidance: 3,
    cascade: true,
  },
  {
    name: "DDIM-50, w = 1 (no guidance)",
    sampler: "ddim",
    steps: 50,
    guidance: 1,
    cascade: true,
  },
  {
    name: "DDIM-50, w = 3",
    sampler: "ddim",
    steps: 50,
    guidance: 3,
    cascade: true,
  },
  {
    name: "base only, DDIM-20, w = 1",
    sampler: "ddim",
    steps: 20,
    guidance: 1,
    cascade: false,
  },
  {
    name: "base only, DDIM-20, w = 3",
    sampler: "ddim",
    steps: 20,
    guidance: 3,
    cascade: false,
  },
  {
    name: "DDIM-20, w = 3",
    sampler: "ddim",
    steps: 20,
    guidance: 3,
    cascade: true,
    small: true,
  },
  {
    name: "DDIM-50, w = 3",
    sampler: "ddim",
    steps: 50,
    guidance: 3,
    cascade: true,
    small: true,
  },
  {
    name: "DDPM-1000, w = 3",
    sampler: "ddpm",
    steps: 1000,
    guidance: 3,
    cascade: true,
    small: true,
  },
  {
    name: "DDPM-1000, w = 1 (no guidance)",
    sampler: "ddpm",
    steps: 1000,
    guidance: 1,
    cascade: true,
    small: true,
  },
];

if (import.meta.main) {
  const args = Deno.args;
  const get = (k: string, d: string) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 && args[i + 1] ? args[i + 1] : d;
  };
  const n = Number(get("n", "500"));
  const nSmall = Number(get("n-small", "50"));
  const seed = Number(get("seed", "1"));
  const dir = get(
    "models",
    new URL("../../models/image/", import.meta.url).pathname,
  );
  const only = get("only", "");
  const rt = await Runtime.load();
  const base = await loadImageModel(rt, `${dir}base`);
  const superres = await loadImageModel(rt, `${dir}superres`);
  const judge = await Classifier.load(rt, `${dir}classifier`);
  const { heldOut } = loadMnist();
  const ref = judge.classify(heldOut.images, heldOut.count);
  let hit = 0;
  for (let i = 0; i < heldOut.count; i++) {
    if (ref.labels[i] === heldOut.labels[i]) hit++;
  }
  console.log(
    `classifier held-out accuracy: ${
      (100 * hit / heldOut.count).toFixed(2)
    }% of ${heldOut.count}`,
  );
  const dim = judge.config.widths[2];
  // The floor at a count: that many held-out images (every k-th, so all
  // classes are in it; the split is stored class by class) against the rest.
  const floors: Record<number, number> = {};
  for (const c of [n, nSmall]) {
    const m = Math.min(c, Math.floor(heldOut.count / 2));
    const step = heldOut.count / m;
    const pick = new Set(
      Array.from({ length: m }, (_, i) => Math.floor(i * step)),
    );
    const a = new Float32Array(m * dim),
      b = new Float32Array((heldOut.count - m) * dim);
    let ia = 0, ib = 0;
    for (let i = 0; i < heldOut.count; i++) {
      const row = ref.features.subarray(i * dim, (i + 1) * dim);
      if (pick.has(i)) a.set(row, dim * ia++);
      else b.set(row, dim * ib++);
    }
    floors[c] = frechetBetween(a, m, b, heldOut.count - m, dim);
    console.log(
      `Fréchet floor at n=${c}: ${
        floors[c].toFixed(2)
      } (${m} held-out vs the other ${heldOut.count - m})`,
    );
  }
  const results: (EvalResult & { floor: number })[] = [];
  for (const s of DEFAULT_SETTINGS) {
    if (only && !s.name.toLowerCase().includes(only.toLowerCase())) continue;
    const count = s.small ? nSmall : n;
    const r = await evaluateSetting(
      s,
      { base, superres },
      judge,
      ref.features,
      heldOut.count,
      count,
      seed,
    );
    results.push({ ...r, floor: floors[count] });
    console.log(
      `| ${r.name} | ${r.images} | ${(100 * r.agreement).toFixed(1)}% | ${
        r.frechet.toFixed(2)
      } | ${(1000 * r.seconds / r.images).toFixed(0)} ms |`,
    );
  }
  const out = get("json", "");
  if (out) {
    await Deno.writeTextFile(
      out,
      JSON.stringify(
        { heldOutAccuracy: hit / heldOut.count, floors, seed, results },
        null,
        2,
      ) + "\n",
    );
  }
}
