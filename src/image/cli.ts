/**
 * The image commands of `deno task cli`:
 *   train-image  train the base, super-resolution or classifier model (resumable)
 *   image        generate digits into a PNG grid or one PNG per image
 */
import { SeerError } from "../errors.ts";
import { Runtime } from "../kernels/runtime.ts";
import { loadImageModel, MODELS_DIR } from "./checkpoint.ts";
import { trainClassifier } from "./classifier.ts";
import { generateImages } from "./generate.ts";
import { loadMnist } from "./mnist.ts";
import { encodeGrey, encodeGrid } from "./png.ts";
import {
  defaultTrainOptions,
  trainDiffusion,
  type TrainOptions,
} from "./train.ts";

type Flags = Record<string, string | true>;

/** `--key value` and `--flag` pairs; unknown keys are refused with the list of known ones. */
function parseFlags(
  args: string[],
  known: Record<string, "value" | "flag">,
  command: string,
): Flags {
  const out: Flags = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) {
      throw new SeerError(
        "invalid_argument",
        `${command}: unexpected argument "${a}"; options start with --`,
      );
    }
    const [key, inline] = a.slice(2).split("=", 2);
    const kind = known[key];
    if (!kind) {
      throw new SeerError(
        "invalid_argument",
        `${command}: unknown option --${key}; known: ${
          Object.keys(known).map((k) => `--${k}`).join(" ")
        }`,
      );
    }
    if (kind === "flag") out[key] = true;
    else {
      const v = inline ?? args[++i];
      if (v === undefined) {
        throw new SeerError(
          "invalid_argument",
          `${command}: --${key} needs a value`,
        );
      }
      out[key] = v;
    }
  }
  return out;
}

function num(
  flags: Flags,
  key: string,
  fallback: number,
  integer = true,
): number {
  const raw = flags[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (
    raw === true || raw === "" || !Number.isFinite(v) ||
    (integer && !Number.isInteger(v))
  ) {
    throw new SeerError(
      "invalid_argument",
      `--${key} must be ${integer ? "an integer" : "a number"}, got "${raw}"`,
    );
  }
  return v;
}

function str(flags: Flags, key: string, fallback: string): string {
  const v = flags[key];
  return typeof v === "string" ? v : fallback;
}

/** A one-line progress bar, redrawn in place on a terminal, one line per update otherwise. */
function progressLine(done: number, total: number, text: string): void {
  const width = 24, filled = Math.round(width * done / total);
  const bar = "█".repeat(filled) + "░".repeat(width - filled);
  const line = `${bar} ${done}/${total} ${text}`;
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(new TextEncoder().encode(`\r\x1b[K${line}`));
    if (done === total) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  } else console.error(line);
}

const TRAIN_HELP = `usage: deno task cli train-image [options]
  --role base|superres|classifier   what to train (default base)
  --out DIR            checkpoint directory (default models/image/<role>); an
                       existing state.safetensors there is resumed
  --steps N            optimizer steps (default 5000 base, 2500 superres)
  --batch N            images per step (default 48 base, 64 superres)
  --lr X               peak learning rate (default 1e-3)  --warmup N (default 200)
  --seed N             seed of initialisation, data order and noise (default 1)
  --dim N --depth N --heads N --patch N   DiT shape (default 64, 4, 4, 2 or 4)
  --schedule cosine|linear   β schedule (default cosine, T = 1000)
  --ema X              EMA decay (default 0.995)   --checkpoint-every N (default 250)
  --stop-after N       leave after N steps of this run (resumable)
  classifier: --epochs N (default 24) --hidden N (256) --features N (64)`;

export async function trainImageCommand(args: string[]): Promise<void> {
  if (args.includes("--help")) return console.log(TRAIN_HELP);
  const flags = parseFlags(args, {
    role: "value",
    out: "value",
    steps: "value",
    batch: "value",
    lr: "value",
    warmup: "value",
    seed: "value",
    dim: "value",
    depth: "value",
    heads: "value",
    patch: "value",
    schedule: "value",
    ema: "value",
    "checkpoint-every": "value",
    "stop-after": "value",
    epochs: "value",
    hidden: "value",
    features: "value",
  }, "train-image");
  const role = str(flags, "role", "base");
  if (role !== "base" && role !== "superres" && role !== "classifier") {
    throw new SeerError(
      "invalid_argument",
      `--role must be base, superres or classifier, got "${role}"`,
    );
  }
  const outDir = str(flags, "out", `${MODELS_DIR}${role}`);
  const rt = await Runtime.load();
  const { train, heldOut } = loadMnist();
  const started = performance.now();
  if (role === "classifier") {
    const c = trainClassifier(rt, train, {
      epochs: num(flags, "epochs", 24),
      batch: num(flags, "batch", 128),
      lr: num(flags, "lr", 2e-3, false),
      seed: num(flags, "seed", 1),
      hidden: num(flags, "hidden", 256),
      features: num(flags, "features", 64),
      onProgress: (p) =>
        progressLine(
          p.epoch,
          p.epochs,
          `loss ${p.loss.toFixed(4)}  ${p.imagesPerSecond.toFixed(0)} images/s`,
        ),
    });
    const { labels } = c.classify(heldOut.images, heldOut.count);
    let hit = 0;
    for (let i = 0; i < heldOut.count; i++) {
      if (labels[i] === heldOut.labels[i]) hit++;
    }
    const accuracy = hit / heldOut.count;
    c.config.training = {
      ...c.config.training,
      heldOutAccuracy: accuracy,
      heldOutCount: heldOut.count,
      seconds: Math.round((performance.now() - started) / 1000),
      command: `deno task cli train-image ${args.join(" ")}`.trim(),
    };
    await c.save(outDir);
    console.log(
      `held-out accuracy ${
        (100 * accuracy).toFixed(2)
      }% of ${heldOut.count}; saved ${outDir}`,
    );
    return;
  }
  const d = defaultTrainOptions(role);
  const o: TrainOptions = {
    ...d,
    outDir,
    model: {
      ...d.model,
      dim: num(flags, "dim", d.model.dim),
      depth: num(flags, "depth", d.model.depth),
      heads: num(flags, "heads", d.model.heads),
      patch: num(flags, "patch", d.model.patch),
    },
    diffusion: {
      ...d.diffusion,
      schedule: str(flags, "schedule", d.diffusion.schedule) as "cosine",
    },
    steps: num(flags, "steps", d.steps),
    batch: num(flags, "batch", d.batch),
    lr: num(flags, "lr", d.lr, false),
    warmup: num(flags, "warmup", d.warmup),
    seed: num(flags, "seed", d.seed),
    emaDecay: num(flags, "ema", d.emaDecay, false),
    checkpointEvery: num(flags, "checkpoint-every", d.checkpointEvery),
    stopAfter: flags["stop-after"] === undefined
      ? undefined
      : num(flags, "stop-after", 0),
    provenance: {
      command: `deno task cli train-image ${args.join(" ")}`.trim(),
    },
    onProgress: (p) =>
      progressLine(
        p.step,
        p.steps,
        `loss ${p.loss.toFixed(4)}  ${
          p.imagesPerSecond.toFixed(1)
        } images/s  lr ${p.lr.toExponential(2)}` +
          (p.checkpoint ? "  [saved]" : ""),
      ),
  };
  const tr = await trainDiffusion(rt, o, train);
  console.log(
    `step ${tr.step}/${o.steps}; checkpoint in ${outDir} (${
      ((performance.now() - started) / 1000).toFixed(0)
    } s)`,
  );
  tr.dispose();
}

const IMAGE_HELP = `usage: deno task cli image [options]
  --class C        digit 0..9, a comma list, or "all" (cycles 0..9; default all)
  --n N            number of images (default 16)
  --sampler S      ddim (default) or ddpm (all 1000 steps)
  --steps N        DDIM steps (default 20)    --eta X   DDIM η (default 0)
  --guidance W     classifier-free guidance scale (default 3; 1 = none)
  --seed N         noise seed (default 1): the same seed gives the same images
  --out FILE.png   write a grid (default grid.png)
  --out-dir DIR    instead write DIR/0.png, DIR/1.png, … (one image each)
  --model DIR      base model (default models/image/base)
  --superres DIR   super-resolution model (default models/image/superres)
  --no-superres    stop at the base model's 14×14 images
  --cols N         images per grid row      --scale N   draw each pixel N×N`;

export async function imageCommand(args: string[]): Promise<void> {
  if (args.includes("--help")) return console.log(IMAGE_HELP);
  const flags = parseFlags(args, {
    class: "value",
    n: "value",
    sampler: "value",
    steps: "value",
    eta: "value",
    guidance: "value",
    seed: "value",
    out: "value",
    "out-dir": "value",
    model: "value",
    superres: "value",
    "no-superres": "flag",
    cols: "value",
    scale: "value",
  }, "image");
  const n = num(flags, "n", 16);
  if (n < 1) {
    throw new SeerError("invalid_argument", `--n must be at least 1, got ${n}`);
  }
  const cls = str(flags, "class", "all");
  let classes: number[];
  if (cls === "all") classes = Array.from({ length: n }, (_, i) => i % 10);
  else {
    const list = cls.split(",").map((c) => {
      const v = Number(c);
      if (c.trim() === "" || !Number.isInteger(v)) {
        throw new SeerError(
          "invalid_argument",
          `--class takes digits 0..9, a comma list or "all", got "${cls}"`,
        );
      }
      return v;
    });
    classes = Array.from({ length: n }, (_, i) => list[i % list.length]);
  }
  const sampler = str(flags, "sampler", "ddim");
  if (sampler !== "ddim" && sampler !== "ddpm") {
    throw new SeerError(
      "invalid_argument",
      `--sampler must be ddim or ddpm, got "${sampler}"`,
    );
  }
  const rt = await Runtime.load();
  const base = await loadImageModel(
    rt,
    str(flags, "model", `${MODELS_DIR}base`),
  );
  const superres = flags["no-superres"]
    ? undefined
    : await loadImageModel(rt, str(flags, "superres", `${MODELS_DIR}superres`));
  const t0 = performance.now();
  const result = await generateImages({
    base,
    superres,
    classes,
    sampler,
    steps: num(flags, "steps", 20),
    eta: num(flags, "eta", 0, false),
    guidance: num(flags, "guidance", 3, false),
    seed: num(flags, "seed", 1),
    onStep: (e) =>
      progressLine(e.step, e.steps, `${e.stage} ${e.size}×${e.size}`),
  });
  const secs = (performance.now() - t0) / 1000;
  const outDir = flags["out-dir"];
  if (typeof outDir === "string") {
    await Deno.mkdir(outDir, { recursive: true });
    for (let i = 0; i < result.images.length; i++) {
      await Deno.writeFile(
        `${outDir}/${i}.png`,
        encodeGrey(result.images[i], result.size, result.size),
      );
    }
    console.log(
      `${result.images.length} images (${result.size}×${result.size}) in ${outDir}/ in ${
        secs.toFixed(1)
      } s`,
    );
  } else {
    const out = str(flags, "out", "grid.png");
    const cols = flags.cols === undefined ? undefined : num(flags, "cols", 4);
    const scale = num(flags, "scale", 1);
    if (scale < 1 || scale > 16) {
      throw new SeerError(
        "invalid_argument",
        `--scale must be in [1, 16], got ${scale}`,
      );
    }
    await Deno.writeFile(
      out,
      encodeGrid(result.images, result.size, cols, scale),
    );
    console.log(
      `${result.images.length} images (${result.size}×${result.size}) → ${out} in ${
        secs.toFixed(1)
      } s`,
    );
  }
  base.dit.dispose();
  superres?.dit.dispose();
}
