/// <reference lib="dom" />
/**
 * The page's image tab: asks the image worker for digits and draws every
 * denoising step as it arrives, the 14×14 base stage and then the 28×28
 * super-resolution stage, so the images can be seen forming.
 */
import * as Comlink from "comlink";
import type { ImageStep, ImageWorkerApi } from "./image_worker.ts";

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;
const worker = Comlink.wrap<ImageWorkerApi>(
  new Worker(new URL("./image-worker.js", location.href), { type: "module" }),
);

const canvas = $<HTMLCanvasElement>("image-canvas");
const status = $<HTMLParagraphElement>("image-status");
const button = $<HTMLButtonElement>("image-generate");
const stopButton = $<HTMLButtonElement>("image-stop");
const number = (id: string) => Number($<HTMLInputElement>(id).value);

/** Draws images side by side, each scaled up to fill a square cell. */
function draw(images: Float32Array[], size: number): void {
  const cell = 112;
  canvas.width = images.length * (cell + 4);
  canvas.height = cell;
  const ctx = canvas.getContext("2d")!;
  ctx.imageSmoothingEnabled = false;
  const tile = new OffscreenCanvas(size, size);
  const tctx = tile.getContext("2d")!;
  images.forEach((img, n) => {
    const data = tctx.createImageData(size, size);
    for (let i = 0; i < size * size; i++) {
      const v = Math.round(Math.min(1, Math.max(0, img[i])) * 255);
      data.data.set([v, v, v, 255], i * 4);
    }
    tctx.putImageData(data, 0, 0);
    ctx.drawImage(tile, n * (cell + 4), 0, cell, cell);
  });
}

button.addEventListener("click", async () => {
  button.disabled = true;
  stopButton.disabled = false;
  canvas.dataset.steps = "0";
  status.dataset.state = "running";
  status.textContent = "loading the image models…";
  const t0 = performance.now();
  try {
    const images = await worker.generate(
      {
        digit: number("image-digit"),
        count: number("image-count"),
        steps: number("image-steps"),
        guidance: number("image-guidance"),
        seed: number("image-seed"),
      },
      Comlink.proxy((s: ImageStep) => {
        draw(s.images, s.size);
        canvas.dataset.steps = String(Number(canvas.dataset.steps ?? 0) + 1);
        status.textContent = `${s.stage} stage: step ${s.step} of ${s.steps}`;
      }),
    );
    draw(images, 28);
    status.dataset.state = "done";
    status.textContent = `done: ${images.length} images in ${
      Math.round(performance.now() - t0)
    } ms`;
  } catch (e) {
    status.dataset.state = "error";
    status.textContent = `error: ${e instanceof Error ? e.message : e}`;
  } finally {
    button.disabled = false;
    stopButton.disabled = true;
  }
});
stopButton.addEventListener("click", () => worker.stop());
