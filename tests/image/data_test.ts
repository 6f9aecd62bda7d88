import assert from "node:assert/strict";
import { loadMnist } from "../../src/image/mnist.ts";
import { downsample2, upsample2 } from "../../src/image/resample.ts";
import {
  frechetBetween,
  frechetDistance,
  meanCov,
  symmetricEigen,
} from "../../src/image/frechet.ts";
import { encodeGrey, gridPixels } from "../../src/image/png.ts";
import { decode } from "fast-png";
import { testRng } from "../helpers.ts";

Deno.test("MNIST: 10 000 labelled digits, split per class 85 / 15, pixels in [0, 1]", () => {
  const { train, heldOut } = loadMnist();
  assert.equal(train.count + heldOut.count, 10000);
  assert.equal(train.images.length, train.count * 784);
  const perClass = (labels: Int32Array) => {
    const c = new Array(10).fill(0);
    for (const l of labels) c[l]++;
    return c;
  };
  const tr = perClass(train.labels), ho = perClass(heldOut.labels);
  for (let d = 0; d < 10; d++) {
    const share = tr[d] / (tr[d] + ho[d]);
    assert.ok(Math.abs(share - 0.85) < 0.01, `class ${d}: ${share}`);
  }
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of train.images) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  assert.equal(min, 0);
  assert.equal(max, 1);
  // Digits are mostly background: MNIST's mean intensity is about 0.13.
  const mean = sum / train.images.length;
  assert.ok(mean > 0.1 && mean < 0.16, `mean ${mean}`);
});

Deno.test("down- and upsampling: pooling averages 2×2, bilinear keeps constants and pixel centres", () => {
  const img = Float32Array.from({ length: 16 }, (_, i) => i);
  assert.deepEqual([...downsample2(img, 1, 4)], [2.5, 4.5, 10.5, 12.5]);
  const flat = upsample2(new Float32Array(9).fill(0.7), 1, 3);
  assert.ok(flat.every((v) => Math.abs(v - 0.7) < 1e-6));
  // A horizontal ramp stays a ramp between pixel centres, clamped at the edges.
  const ramp = upsample2(Float32Array.from([0, 1, 2, 0, 1, 2, 0, 1, 2]), 1, 3);
  assert.deepEqual([...ramp.subarray(0, 6)].map((v) => +v.toFixed(3)), [
    0,
    0.25,
    0.75,
    1.25,
    1.75,
    2,
  ]);
});

Deno.test("Fréchet distance: closed forms for Gaussians and zero for identical sets", () => {
  // Diagonal covariances: d² = |Δμ|² + Σ (√a − √b)².
  const mu1 = Float64Array.of(0, 1, 2), mu2 = Float64Array.of(1, 1, 0);
  const c1 = Float64Array.of(4, 0, 0, 0, 1, 0, 0, 0, 9),
    c2 = Float64Array.of(1, 0, 0, 0, 1, 0, 0, 0, 4);
  const want = 1 + 4 + (2 - 1) ** 2 + 0 + (3 - 2) ** 2;
  assert.ok(Math.abs(frechetDistance(mu1, c1, mu2, c2) - want) < 1e-9);
  // A rotated (non-diagonal) covariance: the distance is rotation invariant.
  const r = 1 / Math.sqrt(2);
  const rot = (d: number[]) => {
    const R = [r, -r, r, r];
    const m = new Float64Array(4);
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 2; j++) {
        for (let k = 0; k < 2; k++) {
          m[i * 2 + j] += R[i * 2 + k] * d[k] * R[j * 2 + k];
        }
      }
    }
    return m;
  };
  const z = new Float64Array(2);
  assert.ok(
    Math.abs(frechetDistance(z, rot([4, 1]), z, rot([1, 9])) - (1 + 4)) < 1e-9,
  );
  // Sample sets: identical sets give 0; the eigen solver reconstructs a matrix.
  const rand = testRng(5);
  const xs = Float32Array.from({ length: 300 * 4 }, () => rand());
  assert.ok(frechetBetween(xs, 300, xs, 300, 4) < 1e-9);
  const { cov } = meanCov(xs, 300, 4);
  const { values, vectors } = symmetricEigen(cov, 4);
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 4; k++) {
        s += vectors[i * 4 + k] * values[k] * vectors[j * 4 + k];
      }
      assert.ok(Math.abs(s - cov[i * 4 + j]) < 1e-12);
    }
  }
});

Deno.test("PNG: greyscale encode round-trips through the decoder; grids and scaling lay out pixels", () => {
  const img = Float32Array.from({ length: 6 }, (_, i) => i / 5);
  const png = decode(encodeGrey(img, 3, 2));
  assert.equal(png.width, 3);
  assert.equal(png.height, 2);
  assert.equal(png.channels, 1);
  assert.deepEqual([...png.data], [0, 51, 102, 153, 204, 255]);
  const big = decode(encodeGrey(img, 3, 2, 2));
  assert.equal(big.width, 6);
  assert.deepEqual([...big.data.subarray(0, 6)], [0, 0, 51, 51, 102, 102]);
  const g = gridPixels(
    [new Float32Array(4).fill(1), new Float32Array(4).fill(0.5)],
    2,
    2,
    1,
  );
  assert.equal(g.width, 7);
  assert.equal(g.height, 4);
  assert.equal(g.data[1 * 7 + 1], 1);
  assert.equal(g.data[1 * 7 + 4], 0.5);
});
