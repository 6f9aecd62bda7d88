/**
 * Halving and doubling the resolution of square grey images: the two
 * stages of the cascade meet here. Kept apart from the MNIST reader so
 * code that samples (the server, the browser) does not pull in the data.
 */

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
