/**
 * A small digit classifier, trained in WASM on the MNIST training split: the
 * judge of generated images, as CLIP judges text-to-image agreement.
 *
 *   784 pixels ─ linear ─ GELU ─ linear ─ GELU (the features) ─ linear ─ 10 logits
 *
 * "Class agreement" is the share of generated images it assigns to the
 * requested digit; the Fréchet distance compares its penultimate features
 * (after the second GELU) of generated and held-out images. Trained with
 * random shifts of up to 2 pixels, so that a digit drawn a little off
 * centre is still judged by its shape.
 */
import { SeerError } from "../errors.ts";
import type { Runtime } from "../kernels/runtime.ts";
import {
  encodeSafetensors,
  f32Bytes,
  parseSafetensors,
  tensorToF32,
} from "../formats/safetensors.ts";
import { writeFileAtomic } from "./checkpoint.ts";
import type { Digits } from "./mnist.ts";
import { Rng } from "./rng.ts";

export interface ClassifierConfig {
  format: "seer-image";
  version: 1;
  role: "classifier";
  /** Layer widths: input, hidden, features, classes. */
  widths: [number, number, number, number];
  training?: Record<string, unknown>;
}

const LAYERS = ["fc1", "fc2", "head"] as const;

export class Classifier {
  /** Weights [out, in] and biases per layer, in WASM memory. */
  readonly w: number[] = [];
  readonly b: number[] = [];
  #bufs = new Map<number, number[]>();

  constructor(readonly rt: Runtime, readonly config: ClassifierConfig) {
    const [a, b, c, d] = config.widths;
    for (const [o, i] of [[b, a], [c, b], [d, c]]) {
      this.w.push(rt.alloc(o * i * 4));
      this.b.push(rt.alloc(o * 4));
    }
  }

  shape(l: number): [number, number] {
    const ws = this.config.widths;
    return [ws[l + 1], ws[l]];
  }

  /** Activations for a batch: h1 pre/post, h2 pre/post, logits, scratch. */
  #acts(n: number): number[] {
    let a = this.#bufs.get(n);
    if (!a) {
      const [, h1, h2, k] = this.config.widths;
      const sizes = [n * 784, n * h1, n * h1, n * h2, n * h2, n * k, h1 * 784];
      a = sizes.map((s) => this.rt.alloc(s * 4));
      this.#bufs.set(n, a);
    }
    return a;
  }

  /** Runs images (n × 784 in [0, 1]); returns pointers to features and logits. */
  forwardPtrs(
    images: Float32Array,
    n: number,
  ): {
    x: number;
    a1: number;
    z1: number;
    a2: number;
    z2: number;
    logits: number;
  } {
    const rt = this.rt, k = rt.k, [inF, h1, h2, nc] = this.config.widths;
    const [x, a1, z1, a2, z2, logits, scratch] = this.#acts(n);
    rt.f32(x, n * inF).set(images.subarray(0, n * inF));
    const lin = (out: number, inp: number, l: number, i: number, o: number) => {
      k.gemm_nt_f32(out, inp, this.w[l], scratch, n, o, i, i, i, o, 0);
      k.bias_add_f32(out, this.b[l], n, o);
    };
    lin(a1, x, 0, inF, h1);
    k.gelu_fast_f32(z1, a1, n * h1);
    lin(a2, z1, 1, h1, h2);
    k.gelu_fast_f32(z2, a2, n * h2);
    lin(logits, z2, 2, h2, nc);
    return { x, a1, z1, a2, z2, logits };
  }

  /** Predicted class and penultimate features for many images, in batches. */
  classify(
    images: Float32Array,
    count: number,
  ): { labels: Int32Array; features: Float32Array; logits: Float32Array } {
    const [, , h2, nc] = this.config.widths;
    const labels = new Int32Array(count),
      features = new Float32Array(count * h2);
    const logits = new Float32Array(count * nc);
    const B = 256;
    for (let s = 0; s < count; s += B) {
      const n = Math.min(B, count - s);
      const r = this.forwardPtrs(images.subarray(s * 784, (s + n) * 784), n);
      features.set(this.rt.f32(r.z2, n * h2), s * h2);
      const lg = this.rt.f32(r.logits, n * nc);
      logits.set(lg, s * nc);
      for (let j = 0; j < n; j++) {
        labels[s + j] = this.rt.k.argmax_f32(r.logits + j * nc * 4, nc);
      }
    }
    return { labels, features, logits };
  }

  tensors() {
    return LAYERS.flatMap((name, l) => {
      const [o, i] = this.shape(l);
      return [
        {
          name: `${name}.weight`,
          dtype: "F32" as const,
          shape: [o, i],
          data: f32Bytes(this.rt.f32(this.w[l], o * i).slice()),
        },
        {
          name: `${name}.bias`,
          dtype: "F32" as const,
          shape: [o],
          data: f32Bytes(this.rt.f32(this.b[l], o).slice()),
        },
      ];
    });
  }

  async save(dir: string): Promise<void> {
    await Deno.mkdir(dir, { recursive: true });
    await writeFileAtomic(
      `${dir}/config.json`,
      new TextEncoder().encode(JSON.stringify(this.config, null, 2) + "\n"),
    );
    await writeFileAtomic(
      `${dir}/model.safetensors`,
      encodeSafetensors(this.tensors(), {
        format: "seer-image",
        version: "1",
        role: "classifier",
      }),
    );
  }

  static async load(rt: Runtime, dir: string): Promise<Classifier> {
    let cfg: ClassifierConfig;
    try {
      cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    } catch (e) {
      throw new SeerError(
        "invalid_argument",
        `cannot read the classifier at ${dir}/config.json: ${
          (e as Error).message
        }`,
      );
    }
    if (
      cfg.format !== "seer-image" || cfg.role !== "classifier" ||
      !Array.isArray(cfg.widths) || cfg.widths.length !== 4
    ) {
      throw new SeerError(
        "invalid_model",
        `${dir}/config.json is not a seer digit classifier`,
      );
    }
    const file = parseSafetensors(
      await Deno.readFile(`${dir}/model.safetensors`),
      `${dir}/model.safetensors`,
    );
    const c = new Classifier(rt, cfg);
    LAYERS.forEach((name, l) => {
      const [o, i] = c.shape(l);
      for (
        const [suffix, ptr, shape] of [["weight", c.w[l], [o, i]], [
          "bias",
          c.b[l],
          [o],
        ]] as const
      ) {
        const t = file.tensors.get(`${name}.${suffix}`);
        if (!t || t.shape.join("x") !== shape.join("x")) {
          throw new SeerError(
            "invalid_model",
            `${dir}/model.safetensors: ${name}.${suffix} missing or not [${shape}]`,
          );
        }
        rt.f32(ptr, shape.reduce((a, b) => a * b, 1)).set(tensorToF32(t));
      }
    });
    return c;
  }
}

/** Shifts a 28 × 28 image by (dx, dy) pixels, filling with 0 (background). */
function shift(
  dst: Float32Array,
  src: Float32Array,
  dx: number,
  dy: number,
): void {
  dst.fill(0);
  for (let y = 0; y < 28; y++) {
    const sy = y - dy;
    if (sy < 0 || sy >= 28) continue;
    for (let x = 0; x < 28; x++) {
      const sx = x - dx;
      if (sx >= 0 && sx < 28) dst[y * 28 + x] = src[sy * 28 + sx];
    }
  }
}

export interface ClassifierTrainOptions {
  epochs: number;
  batch: number;
  lr: number;
  seed: number;
  hidden: number;
  features: number;
  onProgress?: (
    p: {
      epoch: number;
      epochs: number;
      step: number;
      loss: number;
      imagesPerSecond: number;
    },
  ) => void;
}

/** Trains the classifier with AdamW (cosine-decayed lr) and random shifts. */
export function trainClassifier(
  rt: Runtime,
  data: Digits,
  o: ClassifierTrainOptions,
): Classifier {
  const cfg: ClassifierConfig = {
    format: "seer-image",
    version: 1,
    role: "classifier",
    widths: [784, o.hidden, o.features, 10],
    training: {
      epochs: o.epochs,
      batch: o.batch,
      lr: o.lr,
      seed: o.seed,
      augment: "shift ±2 px",
    },
  };
  const c = new Classifier(rt, cfg);
  const k = rt.k, rng = new Rng(rt, o.seed);
  const sizes = [0, 1, 2].map((l) => c.shape(l));
  const grads = sizes.map(([a, b]) => [rt.alloc(a * b * 4), rt.alloc(a * 4)]);
  const mom = sizes.map((
    [a, b],
  ) => [
    rt.alloc(a * b * 4),
    rt.alloc(a * 4),
    rt.alloc(a * b * 4),
    rt.alloc(a * 4),
  ]);
  sizes.forEach(([out, inp], l) => {
    // Kaiming-uniform for the GELU layers (limit sqrt(6 / fan_in)), zero biases.
    const lim = Math.sqrt(6 / inp);
    // Drawn before the view is taken: the draw may grow (and detach) memory.
    const w = rng.uniform(out * inp).map((u) => (2 * u - 1) * lim);
    rt.f32(c.w[l], out * inp).set(w);
    rt.f32(c.b[l], out).fill(0);
    for (
      const [ptr, n] of [[mom[l][0], out * inp], [mom[l][1], out], [
        mom[l][2],
        out * inp,
      ], [mom[l][3], out]]
    ) {
      rt.f32(ptr, n).fill(0);
    }
  });
  const [, h1, h2, nc] = cfg.widths, B = o.batch;
  const dl = rt.alloc(B * nc * 4),
    dz2 = rt.alloc(B * h2 * 4),
    dz1 = rt.alloc(B * h1 * 4);
  const labels = rt.alloc(B * 4);
  const stepsPerEpoch = Math.floor(data.count / B),
    total = stepsPerEpoch * o.epochs;
  const img = new Float32Array(B * 784), one = new Float32Array(784);
  let step = 0;
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    const order = Int32Array.from({ length: data.count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j], order[i]];
    }
    const t0 = performance.now();
    let lossSum = 0;
    for (let s = 0; s < stepsPerEpoch; s++) {
      const shifts = rng.uniform(2 * B);
      for (let j = 0; j < B; j++) {
        const idx = order[s * B + j];
        one.set(data.images.subarray(idx * 784, (idx + 1) * 784));
        shift(
          img.subarray(j * 784, (j + 1) * 784),
          one,
          Math.floor(shifts[2 * j] * 5) - 2,
          Math.floor(shifts[2 * j + 1] * 5) - 2,
        );
        rt.view(Int32Array, labels, B)[j] = data.labels[idx];
      }
      const r = c.forwardPtrs(img, B);
      lossSum += k.softmax_xent_f32(dl, r.logits, labels, B, nc, 1 / B) / B;
      sizes.forEach(([a, b], l) => {
        rt.f32(grads[l][0], a * b).fill(0);
        rt.f32(grads[l][1], a).fill(0);
      });
      const back = (dy: number, x: number, l: number, dx: number) => {
        const [out, inp] = sizes[l];
        k.gemm_tn_f32(grads[l][0], dy, x, out, inp, B, out, inp, inp, 1);
        k.sum_rows_f32(grads[l][1], dy, B, out);
        if (dx) k.gemm_nn_f32(dx, dy, c.w[l], B, inp, out, out, inp, inp, 0);
      };
      back(dl, r.z2, 2, dz2);
      k.gelu_backward_f32(dz2, r.a2, dz2, B * h2);
      back(dz2, r.z1, 1, dz1);
      k.gelu_backward_f32(dz1, r.a1, dz1, B * h1);
      back(dz1, r.x, 0, 0);
      step++;
      const lr = o.lr * 0.5 * (1 + Math.cos(Math.PI * (step - 1) / total));
      const bc1 = 1 - 0.9 ** step, bc2 = 1 - 0.999 ** step;
      sizes.forEach(([a, b], l) => {
        k.adamw_f32(
          c.w[l],
          grads[l][0],
          mom[l][0],
          mom[l][2],
          a * b,
          lr,
          0.9,
          0.999,
          1e-8,
          1e-4,
          bc1,
          bc2,
          1,
        );
        k.adamw_f32(
          c.b[l],
          grads[l][1],
          mom[l][1],
          mom[l][3],
          a,
          lr,
          0.9,
          0.999,
          1e-8,
          0,
          bc1,
          bc2,
          1,
        );
      });
    }
    const dt = (performance.now() - t0) / 1000;
    o.onProgress?.({
      epoch: epoch + 1,
      epochs: o.epochs,
      step,
      loss: lossSum / stepsPerEpoch,
      imagesPerSecond: stepsPerEpoch * B / dt,
    });
  }
  for (const p of [dl, dz2, dz1, labels, ...grads.flat(), ...mom.flat()]) {
    rt.free(p);
  }
  rng.free();
  return c;
}

/** Share of images whose predicted class equals the wanted one. */
export function agreement(
  predicted: Int32Array,
  wanted: ArrayLike<number>,
): number {
  let hit = 0;
  for (let i = 0; i < predicted.length; i++) {
    if (predicted[i] === wanted[i]) hit++;
  }
  return predicted.length ? hit / predicted.length : 0;
}
