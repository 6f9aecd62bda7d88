/**
 * Training a diffusion model on MNIST, in WASM: noise-prediction loss,
 * AdamW with warmup and cosine decay, gradient-norm clipping, an EMA of the
 * weights (what gets sampled), label dropout for classifier-free guidance,
 * and atomic checkpoints that resume a killed run with nothing lost: the
 * step, the PRNG state, the AdamW moments and the EMA are all saved, and the
 * data order is a function of (seed, epoch), so a resumed run continues
 * bit for bit where the last checkpoint left off.
 *
 * Roles: "base" learns 14×14 digits (MNIST pooled 2×2); "superres" learns
 * 28×28 digits given the 2×-upsampled 14×14 version (plus a little noise, so
 * it tolerates a base model's imperfect samples) as a second channel.
 */
import { SeerError } from "../errors.ts";
import type { Runtime } from "../kernels/runtime.ts";
import {
  encodeSafetensors,
  f32Bytes,
  parseSafetensors,
  tensorToF32,
} from "../formats/safetensors.ts";
import {
  type DiffusionConfig,
  type DiTConfig,
  FORMAT,
  type ImageModelConfig,
  validateImageConfig,
  VERSION,
} from "./config.ts";
import { DiT } from "./dit.ts";
import { Schedule } from "./diffusion.ts";
import { encodeModel, writeFileAtomic } from "./checkpoint.ts";
import type { Digits } from "./mnist.ts";
import { downsample2, upsample2 } from "./resample.ts";
import { Rng } from "./rng.ts";

export interface TrainOptions {
  role: "base" | "superres";
  outDir: string;
  model: DiTConfig;
  diffusion: DiffusionConfig;
  /** Total optimizer steps of the run (a resumed run continues to this). */
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  /** Gradient-norm clip (global L2 norm). */
  clip: number;
  emaDecay: number;
  /** Probability of replacing a label by the null label (CFG). */
  labelDrop: number;
  /** superres: the low-res input gets N(0, σ²) noise with σ ~ U(0, condNoise). */
  condNoise: number;
  seed: number;
  /** Save every this many steps (and at the end). */
  checkpointEvery: number;
  /** Stop after this many steps in this process (for tests); the run stays resumable. */
  stopAfter?: number;
  /** Extra fields recorded in config.json (e.g. the command line). */
  provenance?: Record<string, unknown>;
  onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  step: number;
  steps: number;
  loss: number;
  imagesPerSecond: number;
  lr: number;
  gradNorm: number;
  checkpoint?: boolean;
}

export function defaultTrainOptions(
  role: "base" | "superres",
): Omit<TrainOptions, "outDir"> {
  const base = role === "base";
  return {
    role,
    model: {
      imageSize: base ? 14 : 28,
      channels: base ? 1 : 2,
      patch: base ? 2 : 4,
      dim: 64,
      depth: 4,
      heads: 4,
      mlpRatio: 4,
      freqDim: 64,
      classes: 10,
    },
    diffusion: { schedule: "cosine", steps: 1000 },
    // The shipped models' recipes (models/image/README.md).
    steps: base ? 5000 : 2500,
    batch: base ? 48 : 64,
    lr: 1e-3,
    warmup: 200,
    weightDecay: 0.01,
    clip: 1,
    emaDecay: 0.995,
    labelDrop: 0.1,
    condNoise: 0.1,
    seed: 1,
    checkpointEvery: 250,
  };
}

/** The learning rate at a step: linear warmup, then cosine decay to lr / 10. */
export function learningRate(o: TrainOptions, step: number): number {
  if (step < o.warmup) return o.lr * (step + 1) / o.warmup;
  const p = Math.min(1, (step - o.warmup) / Math.max(1, o.steps - o.warmup));
  return o.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)));
}

function checkOptions(o: TrainOptions): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new SeerError("invalid_argument", `train-image: ${what}`);
  };
  need(
    Number.isInteger(o.steps) && o.steps >= 1,
    `--steps must be a positive integer, got ${o.steps}`,
  );
  need(
    Number.isInteger(o.batch) && o.batch >= 1 && o.batch <= 1024,
    `--batch must be in [1, 1024], got ${o.batch}`,
  );
  need(o.lr > 0 && o.lr < 1, `--lr must be in (0, 1), got ${o.lr}`);
  need(
    o.labelDrop >= 0 && o.labelDrop < 1,
    `label drop must be in [0, 1), got ${o.labelDrop}`,
  );
  need(
    o.emaDecay >= 0 && o.emaDecay < 1,
    `EMA decay must be in [0, 1), got ${o.emaDecay}`,
  );
  need(
    Number.isInteger(o.checkpointEvery) && o.checkpointEvery >= 1,
    `--checkpoint-every must be a positive integer, got ${o.checkpointEvery}`,
  );
}

/** A training batch after noising: what one optimizer step consumes. */
export interface NoisedBatch {
  /** batch × channels × size × size network input (x_t, then conditioning). */
  input: Float32Array;
  t: Int32Array;
  labels: Int32Array;
  /** batch × size × size: the noise to predict. */
  eps: Float32Array;
}

/** Flat optimizer state in WASM memory next to the model's parameters. */
export class DiffusionTrainer {
  readonly dit: DiT;
  readonly schedule: Schedule;
  readonly rng: Rng;
  readonly config: ImageModelConfig;
  readonly m: number;
  readonly v: number;
  readonly ema: number;
  readonly grad: number;
  step = 0;
  #perm: { epoch: number; order: Int32Array } | undefined;
  #dataRng: Rng;

  constructor(
    readonly rt: Runtime,
    readonly o: TrainOptions,
    readonly data: Digits,
  ) {
    checkOptions(o);
    this.config = validateImageConfig({
      format: FORMAT,
      version: VERSION,
      role: o.role,
      model: o.model,
      diffusion: o.diffusion,
      ...(o.role === "superres" ? { lowResSize: o.model.imageSize / 2 } : {}),
    });
    if (o.model.imageSize !== (o.role === "base" ? 14 : 28)) {
      throw new SeerError(
        "invalid_argument",
        `train-image: a ${o.role} model works on ${
          o.role === "base" ? 14 : 28
        }×${
          o.role === "base" ? 14 : 28
        } images, the config says ${o.model.imageSize}`,
      );
    }
    this.dit = new DiT(rt, o.model);
    this.schedule = new Schedule(o.diffusion);
    this.rng = new Rng(rt, o.seed);
    this.#dataRng = new Rng(rt, o.seed);
    const n = this.dit.size;
    const zeros = () => {
      const p = rt.alloc(n * 4);
      rt.f32(p, n).fill(0);
      return p;
    };
    this.m = zeros();
    this.v = zeros();
    this.ema = zeros();
    this.grad = this.dit.grads;
    this.dit.init((k) => this.rng.uniform(k), (k) => this.rng.normal(k));
    rt.f32(this.ema, n).set(rt.f32(this.dit.params, n));
  }

  /** The dataset index of the j-th image of the run: a fresh shuffle per epoch. */
  #index(k: number): number {
    const n = this.data.count;
    const epoch = Math.floor(k / n);
    if (!this.#perm || this.#perm.epoch !== epoch) {
      // The order depends only on (seed, epoch), never on when the run resumed.
      this.#dataRng.reseed(this.o.seed * 1000 + epoch + 1);
      const order = Int32Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = this.#dataRng.int(i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      this.#perm = { epoch, order };
    }
    return this.#perm.order[k % n];
  }

  /** Builds one batch: clean images x0 (and conditioning) in [−1, 1]. */
  #batch(): { x0: Float32Array; cond?: Float32Array; labels: Int32Array } {
    const B = this.o.batch, P = 784;
    const raw = new Float32Array(B * P);
    const labels = new Int32Array(B);
    for (let j = 0; j < B; j++) {
      const i = this.#index(this.step * B + j);
      raw.set(this.data.images.subarray(i * P, (i + 1) * P), j * P);
      labels[j] = this.data.labels[i];
    }
    for (let i = 0; i < raw.length; i++) raw[i] = 2 * raw[i] - 1;
    if (this.o.role === "base") return { x0: downsample2(raw, B, 28), labels };
    const cond = upsample2(downsample2(raw, B, 28), B, 14);
    return { x0: raw, cond, labels };
  }

  /** One optimizer step on the next batch; returns its loss and gradient norm. */
  trainStep(): { loss: number; gradNorm: number; lr: number } {
    return this.optimize(this.drawBatch());
  }

  /**
   * The next batch with its noise: clean images, timesteps, labels (some
   * dropped to the null label), the noised network input and the target ε.
   */
  drawBatch(): NoisedBatch {
    const o = this.o;
    const B = o.batch, S = o.model.imageSize, px = S * S, C = o.model.channels;
    const { x0, cond, labels } = this.#batch();
    // Noise draws in a fixed order: timesteps, label drops, ε, conditioning noise.
    const t = Int32Array.from(
      { length: B },
      () => this.rng.int(this.schedule.T),
    );
    const drop = this.rng.uniform(B);
    for (let j = 0; j < B; j++) {
      if (drop[j] < o.labelDrop) labels[j] = o.model.classes;
    }
    const eps = this.rng.normal(B * px);
    const input = new Float32Array(B * C * px);
    for (let j = 0; j < B; j++) {
      this.schedule.noise(
        input.subarray(j * C * px, j * C * px + px),
        x0.subarray(j * px, (j + 1) * px),
        eps.subarray(j * px, (j + 1) * px),
        t[j],
      );
    }
    if (cond) {
      const sig = this.rng.uniform(B);
      const z = this.rng.normal(B * px);
      for (let j = 0; j < B; j++) {
        const s = sig[j] * o.condNoise;
        for (let i = 0; i < px; i++) {
          input[j * C * px + px + i] = cond[j * px + i] + s * z[j * px + i];
        }
      }
    }
    return { input, t, labels, eps };
  }

  /** The batch's mean squared error of ε̂ without changing anything. */
  loss(b: NoisedBatch): number {
    const rt = this.rt, dit = this.dit, B = b.t.length;
    const out = dit.forwardTokens(b.input, b.t, b.labels, B, true);
    const n = B * dit.tokens * this.o.model.patch ** 2;
    const target = rt.array(Float32Array, n), dout = rt.array(Float32Array, n);
    dit.patchify(target.view, b.eps, B, 1);
    const sse = rt.k.mse_loss_f32(dout.ptr, out, target.ptr, n, 2 / n);
    target.free();
    dout.free();
    return sse / n;
  }

  /** Forward, backward, clipping, AdamW and EMA on one batch. */
  optimize(b: NoisedBatch): { loss: number; gradNorm: number; lr: number } {
    const rt = this.rt, k = rt.k, o = this.o, dit = this.dit;
    const { input, t, labels, eps } = b, B = t.length;
    const out = dit.forwardTokens(input, t, labels, B, true);
    const pout = o.model.patch ** 2, n = B * dit.tokens * pout;
    // The target ε in the output's token layout.
    const target = rt.array(Float32Array, n);
    const dout = rt.array(Float32Array, n);
    dit.patchify(target.view, eps, B, 1);
    const sse = k.mse_loss_f32(dout.ptr, out, target.ptr, n, 2 / n);
    rt.f32(this.grad, dit.size).fill(0);
    dit.backward(dout.ptr, B);
    target.free();
    dout.free();

    const gradNorm = Math.sqrt(k.sumsq_f32(this.grad, dit.size));
    const scale = gradNorm > o.clip ? o.clip / gradNorm : 1;
    this.step++;
    const lr = learningRate(o, this.step - 1);
    const bc1 = 1 - 0.9 ** this.step, bc2 = 1 - 0.999 ** this.step;
    for (const s of dit.specs) {
      const off = s.offset * 4;
      k.adamw_f32(
        dit.params + off,
        this.grad + off,
        this.m + off,
        this.v + off,
        s.size,
        lr,
        0.9,
        0.999,
        1e-8,
        s.decay ? o.weightDecay : 0,
        bc1,
        bc2,
        scale,
      );
    }
    // EMA warmup: an average over the steps so far until that is longer than
    // the decay's horizon, so early checkpoints are not dominated by the
    // initial (zero-output) weights.
    k.ema_f32(
      this.ema,
      dit.params,
      dit.size,
      Math.min(o.emaDecay, (1 + this.step) / (10 + this.step)),
    );
    return { loss: sse / n, gradNorm, lr };
  }

  /** Writes state.safetensors, then model.safetensors (EMA weights), atomically. */
  async save(): Promise<void> {
    const rt = this.rt, n = this.dit.size;
    const flat = (p: number) => ({
      dtype: "F32" as const,
      shape: [n],
      data: f32Bytes(rt.f32(p, n).slice()),
    });
    const state = encodeSafetensors([
      { name: "params", ...flat(this.dit.params) },
      { name: "ema", ...flat(this.ema) },
      { name: "adam.m", ...flat(this.m) },
      { name: "adam.v", ...flat(this.v) },
    ], {
      format: "seer-image-train",
      version: String(VERSION),
      step: String(this.step),
      rng: [...this.rng.getState()].map((b) => b.toString(16).padStart(2, "0"))
        .join(""),
      options: JSON.stringify(trainIdentity(this.o)),
    });
    await Deno.mkdir(this.o.outDir, { recursive: true });
    const cfg = {
      ...this.config,
      training: { ...trainIdentity(this.o), ...this.o.provenance },
    };
    await writeFileAtomic(
      `${this.o.outDir}/config.json`,
      new TextEncoder().encode(JSON.stringify(cfg, null, 2) + "\n"),
    );
    await writeFileAtomic(`${this.o.outDir}/state.safetensors`, state);
    await writeFileAtomic(
      `${this.o.outDir}/model.safetensors`,
      encodeModel(this.config, this.dit, rt.f32(this.ema, n).slice()),
    );
  }

  /** Restores from state.safetensors if present; returns whether it did. */
  async resume(): Promise<boolean> {
    const path = `${this.o.outDir}/state.safetensors`;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return false;
      throw e;
    }
    const file = parseSafetensors(bytes, path);
    const meta = file.metadata;
    if (
      meta.format !== "seer-image-train" || meta.version !== String(VERSION)
    ) {
      throw new SeerError(
        "invalid_model",
        `${path}: not a seer training state (format ${meta.format})`,
      );
    }
    const mine = JSON.stringify(trainIdentity(this.o));
    if (meta.options !== mine) {
      throw new SeerError(
        "invalid_argument",
        `${path} was written by a run with different options:\n  saved: ${meta.options}\n  now:   ${mine}\n` +
          `Resume with the same options, or train into another --out directory.`,
      );
    }
    const n = this.dit.size;
    for (
      const [name, ptr] of [["params", this.dit.params], ["ema", this.ema], [
        "adam.m",
        this.m,
      ], ["adam.v", this.v]] as const
    ) {
      const t = file.tensors.get(name);
      if (!t || t.shape.length !== 1 || t.shape[0] !== n) {
        throw new SeerError(
          "invalid_model",
          `${path}: tensor "${name}" missing or not [${n}]`,
        );
      }
      this.rt.f32(ptr, n).set(tensorToF32(t, name));
    }
    const step = Number(meta.step);
    if (
      !Number.isInteger(step) || step < 0 ||
      !/^[0-9a-f]{32}$/.test(meta.rng ?? "")
    ) {
      throw new SeerError(
        "invalid_model",
        `${path}: bad step or PRNG state in metadata`,
      );
    }
    this.step = step;
    this.rng.setState(
      Uint8Array.from(meta.rng.match(/../g)!.map((h) => parseInt(h, 16))),
    );
    return true;
  }

  dispose(): void {
    for (const p of [this.m, this.v, this.ema]) this.rt.free(p);
    this.dit.dispose();
    this.rng.free();
    this.#dataRng.free();
  }
}

/** The options that must match for a resume (not the progress callback etc.). */
function trainIdentity(o: TrainOptions) {
  return {
    role: o.role,
    model: o.model,
    diffusion: o.diffusion,
    steps: o.steps,
    batch: o.batch,
    lr: o.lr,
    warmup: o.warmup,
    weightDecay: o.weightDecay,
    clip: o.clip,
    emaDecay: o.emaDecay,
    labelDrop: o.labelDrop,
    condNoise: o.condNoise,
    seed: o.seed,
  };
}

/** Removes the temporary files of writes a killed run never finished. */
async function removeStaleTemporaries(dir: string): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && /\.tmp-\d+$/.test(e.name)) {
        await Deno.remove(`${dir}/${e.name}`);
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Trains (resuming if outDir holds a state), checkpointing as it goes. */
export async function trainDiffusion(
  rt: Runtime,
  o: TrainOptions,
  data: Digits,
): Promise<DiffusionTrainer> {
  const tr = new DiffusionTrainer(rt, o, data);
  await removeStaleTemporaries(o.outDir);
  const resumed = await tr.resume();
  const startStep = tr.step;
  let t0 = performance.now(), imgs = 0, lossAcc = 0, lossN = 0;
  if (!resumed) await tr.save();
  while (tr.step < o.steps) {
    if (o.stopAfter !== undefined && tr.step - startStep >= o.stopAfter) break;
    const { loss, gradNorm, lr } = tr.trainStep();
    if (!Number.isFinite(loss)) {
      throw new SeerError(
        "internal",
        `train-image: the loss became ${loss} at step ${tr.step}; lower --lr`,
      );
    }
    imgs += o.batch;
    lossAcc += loss;
    lossN++;
    const ckpt = tr.step % o.checkpointEvery === 0 || tr.step === o.steps;
    if (ckpt) await tr.save();
    const now = performance.now();
    if (o.onProgress && (ckpt || now - t0 > 2000 || tr.step === o.steps)) {
      o.onProgress({
        step: tr.step,
        steps: o.steps,
        loss: lossAcc / lossN,
        imagesPerSecond: imgs / ((now - t0) / 1000),
        lr,
        gradNorm,
        checkpoint: ckpt,
      });
      t0 = now;
      imgs = 0;
      lossAcc = 0;
      lossN = 0;
    }
  }
  return tr;
}
