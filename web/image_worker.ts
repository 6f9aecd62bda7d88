/**
 * The page's image worker: loads the shipped digit cascade (config and
 * weights fetched from beside this script) into the single-thread kernels
 * and runs the denoising off the page's thread. The page drives it with
 * comlink; `onStep` hands back every stage's current estimate as it
 * improves, so the page can show the images forming.
 */
import * as Comlink from "comlink";
import { Runtime } from "../src/kernels/runtime.ts";
import {
  type ImageModel,
  imageModelFrom,
  parseConfig,
} from "../src/image/checkpoint.ts";
import { generateImages } from "../src/image/generate.ts";

/** Files next to this script in build/web/. */
const here = (name: string) => new URL(name, self.location.href);

async function fetchBytes(name: string): Promise<Uint8Array> {
  const response = await fetch(here(name));
  if (!response.ok) {
    throw new Error(`cannot fetch ${name}: HTTP ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

export interface ImageRequest {
  digit: number;
  count: number;
  steps: number;
  guidance: number;
  seed: number;
}

/** One denoising step: the current estimate of each image, grey in [0, 1]. */
export interface ImageStep {
  stage: "base" | "superres";
  step: number;
  steps: number;
  size: number;
  images: Float32Array[];
}

let models: Promise<{ base: ImageModel; superres: ImageModel }> | undefined;
let stopper: AbortController | undefined;

async function loadStage(rt: Runtime, stage: string): Promise<ImageModel> {
  const config = parseConfig(
    await fetchBytes(`models/image-${stage}.json`),
    `models/image-${stage}.json`,
  );
  return imageModelFrom(
    rt,
    `models/image-${stage}`,
    config,
    await fetchBytes(`models/image-${stage}.safetensors`),
  );
}

const api = {
  /** Loads the cascade once; later calls wait for the same load. */
  load(): Promise<void> {
    models ??= (async () => {
      const rt = await Runtime.load({ wasm: here("seer.wasm") });
      return {
        base: await loadStage(rt, "base"),
        superres: await loadStage(rt, "superres"),
      };
    })();
    models.catch(() => models = undefined);
    return models.then(() => undefined);
  },

  async generate(
    req: ImageRequest,
    onStep: (step: ImageStep) => void,
  ): Promise<Float32Array[]> {
    await api.load();
    const { base, superres } = await models!;
    stopper = new AbortController();
    const { images } = await generateImages({
      base,
      superres,
      classes: Array(req.count).fill(req.digit),
      sampler: "ddim",
      steps: req.steps,
      guidance: req.guidance,
      seed: req.seed,
      signal: stopper.signal,
      onStep: async (e) => {
        onStep({ ...e });
        // A turn of the event loop, so a stop() from the page gets in.
        await new Promise((r) => setTimeout(r, 0));
      },
    });
    return images;
  },

  stop(): void {
    stopper?.abort();
  },
};

export type ImageWorkerApi = typeof api;
Comlink.expose(api);
