/**
 * The image route's models on Deno: the shipped cascade (models/image/, or
 * a directory holding base/ and superres/) on a WASM runtime of its own, so
 * image work never shares memory with the text engine.
 *
 *   createApp(engine, { images: () => loadImageBackend() });
 */
import { loadCascade } from "../image/checkpoint.ts";
import { generateImages } from "../image/generate.ts";
import { encodeGrey } from "../image/png.ts";
import { Runtime } from "../kernels/runtime.ts";
import type { ImageBackend } from "./images.ts";

export async function loadImageBackend(dir?: string): Promise<ImageBackend> {
  const rt = await Runtime.load();
  const { base, superres } = await loadCascade(rt, dir);
  const size = superres.config.model.imageSize;
  return {
    size,
    classes: base.config.model.classes,
    diffusionSteps: Math.min(base.schedule.T, superres.schedule.T),
    async generate(p, o) {
      const { images } = await generateImages({
        base,
        superres,
        classes: p.classes,
        sampler: p.sampler,
        steps: p.steps,
        guidance: p.guidance,
        seed: p.seed,
        signal: o.signal,
        onStep: o.onStep,
      });
      return images.map((img) => encodeGrey(img, size, size));
    },
    dispose() {
      base.dit.dispose();
      superres.dit.dispose();
    },
  };
}
