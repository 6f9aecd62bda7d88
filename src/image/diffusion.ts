/**
 * Gaussian diffusion (Ho et al., DDPM) on images in [−1, 1]: the β schedule,
 * the forward noising q(x_t | x_0), and two samplers over a noise predictor
 * ε̂(x_t, t): DDPM's ancestral sampler (every step) and DDIM (Song et al.),
 * deterministic for η = 0, on a subsequence of steps.
 *
 * Steps are indexed t = 0..T−1; ᾱ_t = Π_{s≤t} (1 − β_s), and
 *   x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε,  ε ~ N(0, I).
 * Schedules:
 * - linear: β from 1e-4 to 0.02 (DDPM's, for T = 1000; scaled by 1000/T otherwise)
 * - cosine: ᾱ(t) = f(t)/f(0), f(t) = cos²(((t+1)/T + s)/(1 + s) · π/2),
 *   s = 0.008, each β capped at 0.999 (Nichol & Dhariwal).
 */
import { SeerError } from "../errors.ts";
import type { DiffusionConfig } from "./config.ts";

export class Schedule {
  readonly T: number;
  readonly betas: Float64Array;
  readonly alphaBar: Float64Array;

  constructor(readonly config: DiffusionConfig) {
    const T = config.steps;
    this.T = T;
    this.betas = new Float64Array(T);
    this.alphaBar = new Float64Array(T);
    if (config.schedule === "linear") {
      const scale = 1000 / T;
      for (let t = 0; t < T; t++) {
        this.betas[t] = scale *
          (1e-4 + (0.02 - 1e-4) * (T === 1 ? 0 : t / (T - 1)));
      }
    } else {
      const s = 0.008;
      const f = (u: number) =>
        Math.cos((u / T + s) / (1 + s) * Math.PI / 2) ** 2;
      for (let t = 0; t < T; t++) {
        this.betas[t] = Math.min(1 - f(t + 1) / f(t), 0.999);
      }
    }
    let prod = 1;
    for (let t = 0; t < T; t++) {
      prod *= 1 - this.betas[t];
      this.alphaBar[t] = prod;
    }
  }

  /** ᾱ at step t, with ᾱ_{−1} = 1 (the clean image). */
  abar(t: number): number {
    return t < 0 ? 1 : this.alphaBar[t];
  }

  /** x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε for one image (writes into out). */
  noise(
    out: Float32Array,
    x0: ArrayLike<number>,
    eps: ArrayLike<number>,
    t: number,
  ): void {
    const a = Math.sqrt(this.alphaBar[t]), b = Math.sqrt(1 - this.alphaBar[t]);
    for (let i = 0; i < out.length; i++) out[i] = a * x0[i] + b * eps[i];
  }
}

/** Predicts ε for a batch of images at one timestep (guidance already applied). */
export type EpsFn = (x: Float32Array, t: number) => Float32Array;

export interface SamplerProgress {
  /** 1-based step count and total. */
  step: number;
  steps: number;
  /** The diffusion timestep just taken. */
  t: number;
  /** The current estimate of the clean images, x̂_0 (clipped to [−1, 1]). */
  x0: Float32Array;
}

export interface SampleOptions {
  sampler: "ddpm" | "ddim";
  /** DDIM steps (1..T); DDPM always takes all T. */
  steps: number;
  /** DDIM's η: 0 deterministic, 1 as noisy as DDPM. */
  eta: number;
  /** Standard normal draws (the WASM PRNG). */
  normal: (n: number) => Float32Array;
  /** Awaited after every step: return a promise to pace or stream the steps. */
  onStep?: (p: SamplerProgress) => void | Promise<void>;
  /** Checked between steps: an abort stops the sampler with an "aborted" error. */
  signal?: AbortSignal;
}

/** The DDIM timesteps, trailing spacing: ⌊(i+1)·T/S⌋ − 1, so the first is T − 1. */
export function ddimTimesteps(T: number, steps: number): number[] {
  const ts: number[] = [];
  for (let i = 0; i < steps; i++) ts.push(Math.floor((i + 1) * T / steps) - 1);
  return ts;
}

export function checkSteps(sampler: string, steps: number, T: number): void {
  if (sampler !== "ddpm" && sampler !== "ddim") {
    throw new SeerError(
      "invalid_argument",
      `unknown sampler "${sampler}"; use "ddpm" or "ddim"`,
    );
  }
  if (
    sampler === "ddim" && (!Number.isInteger(steps) || steps < 1 || steps > T)
  ) {
    throw new SeerError(
      "invalid_argument",
      `DDIM steps must be an integer in [1, ${T}] (the model's diffusion steps), got ${steps}`,
    );
  }
}

/**
 * Runs a sampler from x_T ~ N(0, I) (drawn here) for `count` values
 * (a batch of images laid end to end). x̂_0 is clipped to [−1, 1] at each
 * step, and for DDIM ε is re-derived from the clipped x̂_0.
 */
export async function sample(
  schedule: Schedule,
  eps: EpsFn,
  count: number,
  o: SampleOptions,
): Promise<Float32Array> {
  const T = schedule.T;
  checkSteps(o.sampler, o.steps, T);
  let x = o.normal(count);
  const x0 = new Float32Array(count);
  const ts = o.sampler === "ddpm"
    ? Array.from({ length: T }, (_, i) => i)
    : ddimTimesteps(T, o.steps);
  const n = ts.length;
  for (let i = n - 1; i >= 0; i--) {
    if (o.signal?.aborted) {
      throw new SeerError("aborted", "image generation was cancelled");
    }
    const t = ts[i], prev = i > 0 ? ts[i - 1] : -1;
    const e = eps(x, t);
    const ab = schedule.abar(t), abPrev = schedule.abar(prev);
    const sa = Math.sqrt(ab), s1 = Math.sqrt(1 - ab);
    for (let j = 0; j < count; j++) {
      x0[j] = Math.max(-1, Math.min(1, (x[j] - s1 * e[j]) / sa));
    }
    const next = new Float32Array(count);
    if (o.sampler === "ddpm") {
      // Posterior q(x_{t−1} | x_t, x̂_0): mean c0·x̂_0 + ct·x_t, variance β̃_t.
      const beta = schedule.betas[t], alpha = 1 - beta;
      const c0 = beta * Math.sqrt(abPrev) / (1 - ab);
      const ct = (1 - abPrev) * Math.sqrt(alpha) / (1 - ab);
      const sigma = Math.sqrt(beta * (1 - abPrev) / (1 - ab));
      const z = t > 0 ? o.normal(count) : null;
      for (let j = 0; j < count; j++) {
        next[j] = c0 * x0[j] + ct * x[j] + (z ? sigma * z[j] : 0);
      }
    } else {
      const sigma = o.eta *
        Math.sqrt((1 - abPrev) / (1 - ab) * (1 - ab / abPrev));
      const dir = Math.sqrt(Math.max(0, 1 - abPrev - sigma * sigma));
      const z = sigma > 0 ? o.normal(count) : null;
      for (let j = 0; j < count; j++) {
        const ej = (x[j] - sa * x0[j]) / s1;
        next[j] = Math.sqrt(abPrev) * x0[j] + dir * ej + (z ? sigma * z[j] : 0);
      }
    }
    x = next;
    await o.onStep?.({ step: n - i, steps: n, t, x0 });
  }
  return x;
}
