import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import {
  agreement,
  Classifier,
  trainClassifier,
} from "../../src/image/classifier.ts";
import { loadMnist } from "../../src/image/mnist.ts";

const rt = await Runtime.load();

Deno.test("classifier: a short training run beats chance by far, and survives save/load", async () => {
  const { train, heldOut } = loadMnist();
  // Every 4th training image (the split is stored class by class), 2 epochs,
  // a narrow network: seconds, not minutes.
  const n = Math.floor(train.count / 4);
  const images = new Float32Array(n * 784), labels0 = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    images.set(train.images.subarray(4 * i * 784, (4 * i + 1) * 784), i * 784);
    labels0[i] = train.labels[4 * i];
  }
  const subset = { images, labels: labels0, count: n };
  const c = trainClassifier(rt, subset, {
    epochs: 2,
    batch: 50,
    lr: 3e-3,
    seed: 1,
    hidden: 64,
    features: 16,
  });
  const { labels, features } = c.classify(heldOut.images, heldOut.count);
  assert.equal(features.length, heldOut.count * 16);
  const acc = agreement(labels, heldOut.labels);
  // Chance is 10 %; an MLP sees 80 % and more on MNIST after a pass or two.
  assert.ok(acc > 0.7, `held-out accuracy ${acc}`);
  const dir = await Deno.makeTempDir();
  await c.save(dir);
  const back = await Classifier.load(rt, dir);
  const again = back.classify(heldOut.images.subarray(0, 100 * 784), 100);
  assert.deepEqual(again.labels, labels.subarray(0, 100));
  await Deno.writeTextFile(
    `${dir}/config.json`,
    `{"format":"seer-image","role":"base"}`,
  );
  await assert.rejects(Classifier.load(rt, dir), /not a seer digit classifier/);
  await Deno.remove(dir, { recursive: true });
});
