/**
 * Random-weight llama2.c checkpoints in the shapes of llama2.c's story
 * models, for benchmarks (timing only: the weights mean nothing).
 *
 *   deno task make-model --shape 15M|42M|110M [--seed N] --out FILE
 *
 * Weights are N(0, 0.02) from the kernels' seeded xoshiro128** generator
 * (so a seed gives the same file everywhere), RMSNorm gains are 1, the
 * classifier is shared with the embedding. The vocabulary has 32000 tokens:
 * use the Llama 2 tokenizer.bin with these models. The file is written in
 * chunks, so a 110M model (≈ 440 MB) never needs two copies in memory.
 */
import type { LlamaConfig } from "../src/formats/types.ts";
import {
  llama2cFileBytes,
  llama2cHeader,
  llama2cLayout,
  ropeTable,
  sectionFloats,
} from "../src/formats/llama2c.ts";
import { checkConfig } from "../src/formats/validate.ts";
import { Runtime } from "../src/kernels/runtime.ts";
import { SeerError } from "../src/errors.ts";
import { number, parse, string } from "../src/cli/args.ts";

const base = { vocabSize: 32000, ropeTheta: 10000, normEps: 1e-5 };

/** The shapes of llama2.c's story models (../shared/models/PROVENANCE.md). */
export const SHAPES: Record<string, LlamaConfig> = {
  "15M": {
    dim: 288,
    hiddenDim: 768,
    nLayers: 6,
    nHeads: 6,
    nKvHeads: 6,
    seqLen: 256,
    ...base,
  },
  "42M": {
    dim: 512,
    hiddenDim: 1376,
    nLayers: 8,
    nHeads: 8,
    nKvHeads: 8,
    seqLen: 1024,
    ...base,
  },
  "110M": {
    dim: 768,
    hiddenDim: 2048,
    nLayers: 12,
    nHeads: 12,
    nKvHeads: 12,
    seqLen: 1024,
    ...base,
  },
};

export const WEIGHT_STD = 0.02;

export interface MakeModelOptions {
  config: LlamaConfig;
  seed: number;
  out: string;
  /** Floats generated and written per step (default 1 Mi: 4 MB; made even). */
  chunk?: number;
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await file.write(bytes.subarray(at));
  }
}

/** Writes the checkpoint; returns its size in bytes. */
export async function makeModel(o: MakeModelOptions): Promise<number> {
  checkConfig(o.config, "make-model");
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) {
    throw new SeerError(
      "invalid_argument",
      `--seed must be a non-negative integer, got ${o.seed}`,
    );
  }
  // Even, so that every call draws whole Box–Muller pairs and the stream
  // does not depend on where the chunks fall (sections are even: dim is).
  const chunk = 2 * Math.ceil((o.chunk ?? 1 << 20) / 2);
  const rt = await Runtime.load();
  const state = rt.alloc(16);
  // The 64-bit seed as two u32 halves.
  rt.k.rng_seed(state, o.seed % 2 ** 32, Math.floor(o.seed / 2 ** 32));
  const buf = rt.array(Float32Array, chunk);
  const ones = new Float32Array(chunk).fill(1);
  const bytesOf = (f: Float32Array) =>
    new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

  const file = await Deno.open(o.out, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    await writeAll(file, llama2cHeader(o.config, true));
    for (const s of llama2cLayout(o.config, true)) {
      if (s.kind === "rope_real" || s.kind === "rope_imag") {
        const kind = s.kind === "rope_real" ? "real" : "imag";
        await writeAll(file, bytesOf(ropeTable(o.config, kind)));
        continue;
      }
      for (let left = sectionFloats(s); left > 0;) {
        const n = Math.min(left, chunk);
        if (s.kind === "norm") {
          await writeAll(file, bytesOf(ones.subarray(0, n)));
        } else {
          rt.k.rng_normal_f32(state, buf.ptr, n, 0, WEIGHT_STD);
          // Copy out of WASM memory: the write is async and memory may move.
          await writeAll(file, bytesOf(buf.view.slice(0, n)));
        }
        left -= n;
      }
    }
  } finally {
    file.close();
    buf.free();
    rt.free(state);
  }
  return llama2cFileBytes(o.config, true);
}

const USAGE = `usage: deno task make-model --shape ${
  Object.keys(SHAPES).join("|")
} [--seed N] --out FILE

Writes a random-weight llama2.c checkpoint (weights N(0, ${WEIGHT_STD}), norms 1,
shared classifier, vocab 32000: use the Llama 2 tokenizer.bin with it).
The seed defaults to 0; the same seed gives the same file.`;

/** The command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    const v = parse(args, {
      shape: { type: "string" },
      seed: { type: "string" },
      out: { type: "string" },
    }, USAGE);
    const f = { shape: string(v, "shape"), out: string(v, "out") };
    const seed = number(v, "seed", {
      min: 0,
      max: Number.MAX_SAFE_INTEGER,
      integer: true,
    }) ?? 0;
    const config = SHAPES[f.shape ?? ""];
    if (!config) {
      throw new SeerError(
        "invalid_argument",
        `--shape must be one of ${Object.keys(SHAPES).join(", ")}${
          f.shape ? `, not "${f.shape}"` : ""
        }`,
      );
    }
    if (!f.out) {
      throw new SeerError("invalid_argument", "--out FILE is required");
    }
    const t0 = performance.now();
    const bytes = await makeModel({ config, seed, out: f.out });
    console.error(
      `make-model: wrote ${f.out} (${f.shape}, seed ${seed}, ${
        (bytes / 2 ** 20).toFixed(1)
      } MiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof SeerError)) throw e;
    console.error(`make-model: ${e.message}`);
    return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
