/**
 * Image-model checkpoints: a directory with
 * - config.json        the ImageModelConfig (plus how it was trained)
 * - model.safetensors  the weights to sample with (the EMA weights), one
 *                      tensor per parameter in paramSpecs order, metadata
 *                      { format: "seer-image", version: "1", role }
 * - state.safetensors  (training only) parameters, EMA, AdamW moments, the
 *                      step and the PRNG state: everything to resume exactly.
 * Every file is written atomically (temporary file, fsync, rename), state
 * first: a run killed at any moment resumes from its last complete state.
 */
import { SeerError } from "../errors.ts";
import type { Runtime } from "../kernels/runtime.ts";
import {
  encodeSafetensors,
  f32Bytes,
  parseSafetensors,
  type SafeTensorsFile,
  tensorToF32,
} from "../formats/safetensors.ts";
import {
  FORMAT,
  type ImageModelConfig,
  validateImageConfig,
  VERSION,
} from "./config.ts";
import { DiT } from "./dit.ts";
import { Schedule } from "./diffusion.ts";

/** Writes a file atomically: a temporary name in the same directory, then rename. */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array,
): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const file = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    let written = 0;
    while (written < data.length) {
      written += await file.write(data.subarray(written));
    }
    // On disk before the rename, so a crash cannot leave a renamed, empty file.
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
}

async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new SeerError(
        "invalid_argument",
        `${what} not found at ${path}. Train one with \`deno task cli train-image\` or point --model at a model directory.`,
      );
    }
    throw e;
  }
}

export async function readConfig(dir: string): Promise<ImageModelConfig> {
  const path = `${dir}/config.json`;
  return parseConfig(await readBytes(path, "model config"), path);
}

/** config.json's bytes to a checked config; `path` names it in errors. */
export function parseConfig(bytes: Uint8Array, path: string): ImageModelConfig {
  const text = new TextDecoder().decode(bytes);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new SeerError(
      "invalid_model",
      `${path}: not JSON (${(e as Error).message})`,
    );
  }
  return validateImageConfig(raw, path);
}

/** Tensors of model.safetensors for a DiT's flat buffer (EMA or raw weights). */
export function modelTensors(dit: DiT, flat: Float32Array) {
  return dit.specs.map((s) => ({
    name: s.name,
    dtype: "F32" as const,
    shape: s.shape[0] === 1 ? [s.shape[1]] : [...s.shape],
    data: f32Bytes(flat.slice(s.offset, s.offset + s.size)),
  }));
}

export function encodeModel(
  config: ImageModelConfig,
  dit: DiT,
  flat: Float32Array,
): Uint8Array {
  return encodeSafetensors(modelTensors(dit, flat), {
    format: FORMAT,
    version: String(VERSION),
    role: config.role,
  });
}

/**
 * Copies model.safetensors' tensors into a DiT, checking that the file is a
 * seer image model and that every tensor has the shape the config implies.
 */
export function loadWeightsInto(
  dit: DiT,
  file: SafeTensorsFile,
  source: string,
): void {
  const meta = file.metadata;
  if (meta.format !== FORMAT || meta.version !== String(VERSION)) {
    throw new SeerError(
      "invalid_model",
      `${source}: metadata says format ${JSON.stringify(meta.format)} version ${
        JSON.stringify(meta.version)
      }; expected "${FORMAT}" version "${VERSION}"`,
    );
  }
  for (const s of dit.specs) {
    const t = file.tensors.get(s.name);
    const want = s.shape[0] === 1 ? [s.shape[1]] : s.shape;
    if (!t) {
      throw new SeerError(
        "invalid_model",
        `${source}: tensor "${s.name}" is missing; config.json and the weights do not belong together`,
      );
    }
    if (t.shape.join("x") !== want.join("x")) {
      throw new SeerError(
        "invalid_model",
        `${source}: tensor "${s.name}" has shape [${t.shape}], config.json implies [${want}]; ` +
          `config.json and the weights do not belong together`,
      );
    }
    const values = tensorToF32(t, s.name);
    for (const v of values) {
      if (!Number.isFinite(v)) {
        throw new SeerError(
          "invalid_model",
          `${source}: tensor "${s.name}" holds NaN or infinity`,
        );
      }
    }
    dit.rt.f32(dit.params + s.offset * 4, s.size).set(values);
  }
  const extra = [...file.tensors.keys()].filter((n) => !dit.byName.has(n));
  if (extra.length) {
    throw new SeerError(
      "invalid_model",
      `${source}: unexpected tensors ${
        extra.slice(0, 3).join(", ")
      }; config.json and the weights do not belong together`,
    );
  }
}

/** A model ready to sample: its config, network and noise schedule. */
export interface ImageModel {
  dir: string;
  config: ImageModelConfig;
  dit: DiT;
  schedule: Schedule;
}

export async function loadImageModel(
  rt: Runtime,
  dir: string,
): Promise<ImageModel> {
  const config = await readConfig(dir);
  const path = `${dir}/model.safetensors`;
  return imageModelFrom(
    rt,
    dir,
    config,
    await readBytes(path, "model weights"),
  );
}

/**
 * A model from a config and the bytes of its model.safetensors, for code
 * that fetched them (the browser) rather than read them from disk.
 */
export function imageModelFrom(
  rt: Runtime,
  dir: string,
  config: ImageModelConfig,
  weights: Uint8Array,
): ImageModel {
  const path = `${dir}/model.safetensors`;
  const file = parseSafetensors(weights, path);
  const dit = new DiT(rt, config.model);
  try {
    loadWeightsInto(dit, file, path);
  } catch (e) {
    dit.dispose();
    throw e;
  }
  return { dir, config, dit, schedule: new Schedule(config.diffusion) };
}

/** Where the shipped image models live: models/image/ in the repository. */
export const MODELS_DIR =
  new URL("../../models/image/", import.meta.url).pathname;

/**
 * The shipped cascade (or one in `dir`, ending in /, with base/ and superres/),
 * ready for generateImages:
 *   const { base, superres } = await loadCascade(rt);
 *   const { images } = await generateImages({ base, superres, classes: [7], guidance: 3 });
 */
export async function loadCascade(
  rt: Runtime,
  dir = MODELS_DIR,
): Promise<{ base: ImageModel; superres: ImageModel }> {
  const base = await loadImageModel(rt, `${dir}base`);
  try {
    return { base, superres: await loadImageModel(rt, `${dir}superres`) };
  } catch (e) {
    base.dit.dispose();
    throw e;
  }
}
