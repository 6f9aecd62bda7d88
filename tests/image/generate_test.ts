import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import { type ImageModel, loadImageModel } from "../../src/image/checkpoint.ts";
import { generateImages, type StepEvent } from "../../src/image/generate.ts";
import { loadMnist } from "../../src/image/mnist.ts";
import { defaultTrainOptions, trainDiffusion } from "../../src/image/train.ts";
import { imageCommand } from "../../src/image/cli.ts";

const rt = await Runtime.load();
const { train } = loadMnist();

/** Tiny base and super-resolution models, trained for 2 steps into temp dirs. */
async function tinyModels(): Promise<
  { base: ImageModel; superres: ImageModel; dirs: string[] }
> {
  const dirs: string[] = [];
  const models: ImageModel[] = [];
  for (const role of ["base", "superres"] as const) {
    const d = defaultTrainOptions(role), outDir = await Deno.makeTempDir();
    dirs.push(outDir);
    const tr = await trainDiffusion(rt, {
      ...d,
      outDir,
      model: {
        ...d.model,
        dim: 16,
        depth: 1,
        heads: 2,
        mlpRatio: 2,
        freqDim: 8,
      },
      steps: 2,
      batch: 2,
      warmup: 1,
    }, train);
    tr.dispose();
    models.push(await loadImageModel(rt, outDir));
  }
  return { base: models[0], superres: models[1], dirs };
}

const { base, superres, dirs } = await tinyModels();

Deno.test("cascade: 14×14 then 28×28 images in [0, 1], steps reported per stage", async () => {
  const events: StepEvent[] = [];
  const out = await generateImages({
    base,
    superres,
    classes: [3, 7, 7],
    steps: 4,
    guidance: 2,
    seed: 9,
    onStep: (e) => {
      events.push(e);
    },
  });
  assert.equal(out.size, 28);
  assert.equal(out.images.length, 3);
  assert.equal(out.baseImages.length, 3);
  for (const im of out.images) {
    assert.equal(im.length, 784);
    assert.ok(im.every((v) => v >= 0 && v <= 1));
  }
  assert.deepEqual(
    events.map((e) => `${e.stage}:${e.step}/${e.steps}:${e.size}`),
    [1, 2, 3, 4].map((s) => `base:${s}/4:14`).concat(
      [1, 2, 3, 4].map((s) => `superres:${s}/4:28`),
    ),
  );
  assert.equal(events[0].images.length, 3);
});

Deno.test("generation is reproducible per seed (DDIM η = 0 and DDPM), and seeds differ", async () => {
  const run = (seed: number, sampler: "ddim" | "ddpm") =>
    generateImages({
      base,
      superres,
      classes: [1, 2],
      sampler,
      steps: 3,
      guidance: 3,
      seed,
    });
  const a = await run(4, "ddim"),
    b = await run(4, "ddim"),
    c = await run(5, "ddim");
  assert.deepEqual(a.images, b.images);
  assert.notDeepEqual(a.images, c.images);
  const d = await generateImages({
    base,
    classes: [4],
    sampler: "ddpm",
    guidance: 1,
    seed: 2,
  });
  const e = await generateImages({
    base,
    classes: [4],
    sampler: "ddpm",
    guidance: 1,
    seed: 2,
  });
  assert.equal(d.size, 14);
  assert.deepEqual(d.images, e.images);
  // Batching does not change an image: the same seed in batches of 1 or 2.
  const f = await generateImages({
    base,
    classes: [1, 2],
    steps: 3,
    guidance: 3,
    seed: 4,
    batchSize: 2,
  });
  const g = await generateImages({
    base,
    classes: [1, 2],
    steps: 3,
    guidance: 3,
    seed: 4,
    batchSize: 2,
  });
  assert.deepEqual(f.baseImages, g.baseImages);
});

Deno.test("bad generation requests are clear errors", async () => {
  const bad = async (o: Record<string, unknown>, re: RegExp) => {
    await assert.rejects(
      generateImages({ base, superres, classes: [1], ...o }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "invalid_argument", e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  };
  await bad(
    { classes: [10] },
    /unknown class 10: the model knows classes 0\.\.9/,
  );
  await bad({ classes: [-1] }, /unknown class -1/);
  await bad({ classes: [] }, /at least one image/);
  await bad({ steps: 0 }, /DDIM steps must be an integer in \[1, 1000\]/);
  await bad({ steps: 100000 }, /DDIM steps/);
  await bad({ guidance: -1 }, /guidance must be in/);
  await bad({ guidance: 1e9 }, /guidance must be in/);
  await bad({ sampler: "euler" }, /unknown sampler/);
  await bad({ seed: -4 }, /seed/);
  await bad({ classes: new Array(5000).fill(1) }, /at most 4096/);
  await bad({ base: superres }, /not a base model|takes/);
});

Deno.test("CLI image: writes a grid and one PNG per image; bad options are invalid_argument", async () => {
  const dir = await Deno.makeTempDir();
  const common = [
    "--model",
    dirs[0],
    "--superres",
    dirs[1],
    "--steps",
    "2",
    "--seed",
    "3",
  ];
  const quiet = async (args: string[]) => {
    const [log, err] = [console.log, console.error];
    console.log = console.error = () => {};
    try {
      await imageCommand(args);
    } finally {
      [console.log, console.error] = [log, err];
    }
  };
  await quiet([...common, "--class", "7", "--n", "3", "--out", `${dir}/g.png`]);
  const png = await Deno.readFile(`${dir}/g.png`);
  assert.deepEqual([...png.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  await quiet([...common, "--n", "2", "--out-dir", `${dir}/each`]);
  const names = [];
  for await (const e of Deno.readDir(`${dir}/each`)) names.push(e.name);
  assert.deepEqual(names.sort(), ["0.png", "1.png"]);
  // Each image is its own 28×28 greyscale PNG: IHDR width, height, depth 8, colour type 0.
  const one = await Deno.readFile(`${dir}/each/0.png`);
  const ihdr = new DataView(one.buffer, 16, 8);
  assert.deepEqual([ihdr.getUint32(0), ihdr.getUint32(4), one[24], one[25]], [
    28,
    28,
    8,
    0,
  ]);
  // The dispatcher (src/cli.ts) turns invalid_argument into exit status 2.
  for (
    const [args, re] of [
      [[...common, "--class", "12"], /unknown class 12/],
      [[...common, "--steps", "0"], /DDIM steps/],
      [[...common, "--sampler", "plms"], /--sampler must be ddim or ddpm/],
      [["--model", dir], /not found/],
      [[...common, "--bogus", "1"], /unknown option --bogus/],
      [[...common, "--n", "0"], /--n must be at least 1/],
    ] as [string[], RegExp][]
  ) {
    await assert.rejects(quiet(args), (e: Error & { code?: string }) => {
      assert.equal(e.code, "invalid_argument", e.message);
      assert.match(e.message, re);
      return true;
    });
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("corrupt or mismatched checkpoints are refused with what is wrong", async () => {
  const dir = await Deno.makeTempDir();
  const cfg = JSON.parse(await Deno.readTextFile(`${dirs[0]}/config.json`));
  const weights = await Deno.readFile(`${dirs[0]}/model.safetensors`);
  const expectModelError = async (re: RegExp) => {
    await assert.rejects(
      loadImageModel(rt, dir),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "invalid_model", e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  };
  const write = async (c: unknown, w: Uint8Array) => {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      typeof c === "string" ? c : JSON.stringify(c),
    );
    await Deno.writeFile(`${dir}/model.safetensors`, w);
  };
  await write(cfg, weights.subarray(0, weights.length - 100));
  await expectModelError(/ends at byte/);
  await write("{ not json", weights);
  await expectModelError(/not JSON/);
  await write({ ...cfg, format: "other" }, weights);
  await expectModelError(/format is "other"/);
  await write({ ...cfg, version: 9 }, weights);
  await expectModelError(/version 9/);
  await write({ ...cfg, model: { ...cfg.model, dim: 32 } }, weights);
  await expectModelError(/has shape .* config\.json implies/);
  await write({ ...cfg, model: { ...cfg.model, patch: 3 } }, weights);
  await expectModelError(/not a multiple of patch 3/);
  await write({ ...cfg, model: { ...cfg.model, heads: 3 } }, weights);
  await expectModelError(/multiple of 4/);
  await write(
    { ...cfg, diffusion: { schedule: "sigmoid", steps: 1000 } },
    weights,
  );
  await expectModelError(/"schedule" must be "linear" or "cosine"/);
  await write({ ...cfg, model: { ...cfg.model, depth: 2 } }, weights);
  await expectModelError(/tensor "blocks\.1\..*" is missing/);
  // Weights with a NaN are refused too.
  const nan = weights.slice();
  nan.fill(0xff, nan.length - 8);
  await write(cfg, nan);
  await expectModelError(/NaN/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("cleanup", async () => {
  base.dit.dispose();
  superres.dit.dispose();
  for (const d of dirs) await Deno.remove(d, { recursive: true });
});
