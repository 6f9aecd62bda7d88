/**
 * Greyscale PNGs of generated digits through the npm encoder `fast-png`:
 * one image, or a grid of them with a 2-pixel dark border.
 */
import { encode } from "fast-png";

/** Values in [0, 1] → 8-bit grey. */
function toBytes(x: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.round(Math.min(1, Math.max(0, x[i])) * 255);
  }
  return out;
}

/** Encodes a width × height grey image, each pixel drawn as scale × scale. */
export function encodeGrey(
  image: ArrayLike<number>,
  width: number,
  height: number,
  scale = 1,
): Uint8Array {
  if (scale === 1) {
    return encode({
      width,
      height,
      data: toBytes(image),
      channels: 1,
      depth: 8,
    });
  }
  const W = width * scale, H = height * scale;
  const big = new Float32Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      big[y * W + x] =
        image[Math.floor(y / scale) * width + Math.floor(x / scale)];
    }
  }
  return encode({
    width: W,
    height: H,
    data: toBytes(big),
    channels: 1,
    depth: 8,
  });
}

/** Lays out square images of side `size` in rows of `cols` (default: near-square). */
export function gridPixels(
  images: ArrayLike<number>[],
  size: number,
  cols = Math.ceil(Math.sqrt(images.length)),
  pad = 2,
): { data: Float32Array; width: number; height: number } {
  const rows = Math.ceil(images.length / cols);
  const width = cols * (size + pad) + pad, height = rows * (size + pad) + pad;
  const data = new Float32Array(width * height).fill(0.15);
  images.forEach((img, i) => {
    const ox = pad + (i % cols) * (size + pad),
      oy = pad + Math.floor(i / cols) * (size + pad);
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        data[(oy + y) * width + ox + x] = img[y * size + x];
      }
    }
  });
  return { data, width, height };
}

export function encodeGrid(
  images: ArrayLike<number>[],
  size: number,
  cols?: number,
  scale = 1,
): Uint8Array {
  const g = gridPixels(images, size, cols);
  return encodeGrey(g.data, g.width, g.height, scale);
}
