import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import { parseSafetensors } from "../../src/formats/safetensors.ts";
import { loadImageModel } from "../../src/image/checkpoint.ts";
import { loadMnist } from "../../src/image/mnist.ts";
import {
  defaultTrainOptions,
  DiffusionTrainer,
  trainDiffusion,
  type TrainOptions,
} from "../../src/image/train.ts";

const rt = await Runtime.load();
const { train } = loadMnist();

function tiny(
  outDir: string,
  role: "base" | "superres" = "base",
): TrainOptions {
  const d = defaultTrainOptions(role);
  return {
    ...d,
    outDir,
    model: { ...d.model, dim: 16, depth: 1, heads: 2, mlpRatio: 2, freqDim: 8 },
    steps: 6,
    batch: 4,
    warmup: 2,
    checkpointEvery: 3,
  };
}

Deno.test("a training step of a tiny model lowers the loss on a fixed batch", () => {
  for (const role of ["base", "superres"] as const) {
    const tr = new DiffusionTrainer(rt, {
      ...tiny("/nonexistent", role),
      lr: 3e-3,
    }, train);
    const batch = tr.drawBatch();
    const before = tr.loss(batch);
    for (let i = 0; i < 3; i++) tr.optimize(batch);
    const after = tr.loss(batch);
    assert.ok(after < before, `${role}: loss ${before} → ${after}`);
    tr.dispose();
  }
});

Deno.test("training writes a checkpoint that the sampler loads, and resumes in process", async () => {
  const dir = await Deno.makeTempDir();
  const full = await trainDiffusion(rt, tiny(dir), train);
  const want = rt.f32(full.dit.params, full.dit.size).slice();
  full.dispose();
  const model = await loadImageModel(rt, dir);
  assert.equal(model.config.role, "base");
  model.dit.dispose();
  // Two legs of 3 steps each end where one run of 6 does.
  const dir2 = await Deno.makeTempDir();
  (await trainDiffusion(rt, { ...tiny(dir2), stopAfter: 3 }, train)).dispose();
  const st = parseSafetensors(await Deno.readFile(`${dir2}/state.safetensors`));
  assert.equal(st.metadata.step, "3");
  const resumed = await trainDiffusion(rt, tiny(dir2), train);
  assert.equal(resumed.step, 6);
  assert.deepEqual(rt.f32(resumed.dit.params, resumed.dit.size).slice(), want);
  resumed.dispose();
  // A resume with other options is refused, naming both.
  await assert.rejects(
    trainDiffusion(rt, { ...tiny(dir2), lr: 5e-4 }, train),
    (e: Error & { code?: string }) =>
      e.code === "invalid_argument" && /different options/.test(e.message),
  );
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(dir2, { recursive: true });
});

Deno.test("a training process killed at a random moment resumes with nothing lost", async () => {
  const cli = new URL("../../src/cli.ts", import.meta.url).pathname;
  const args = (out: string) => [
    "run",
    "-A",
    cli,
    "train-image",
    "--out",
    out,
    "--steps",
    "60",
    "--batch",
    "4",
    "--dim",
    "16",
    "--depth",
    "1",
    "--heads",
    "2",
    "--warmup",
    "2",
    "--checkpoint-every",
    "2",
  ];
  const run = (out: string) =>
    new Deno.Command(Deno.execPath(), {
      args: args(out),
      stdout: "piped",
      stderr: "piped",
    });
  const a = await Deno.makeTempDir(), b = await Deno.makeTempDir();
  const whole = await run(a).output();
  assert.ok(whole.success, new TextDecoder().decode(whole.stderr));
  // Kill the second run with SIGKILL a little after its first checkpoint, at a
  // moment picked by the clock: possibly in a step, possibly mid-write.
  const child = run(b).spawn();
  const reader = child.stderr.getReader();
  let seen = "";
  while (!seen.includes("[saved]")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 150)));
  try {
    child.kill("SIGKILL");
  } catch { /* it may have finished already */ }
  reader.releaseLock();
  await child.stderr.cancel();
  await child.stdout.cancel();
  const status = await child.status;
  const killedAt =
    parseSafetensors(await Deno.readFile(`${b}/state.safetensors`)).metadata
      .step;
  const rest = await run(b).output();
  assert.ok(rest.success, new TextDecoder().decode(rest.stderr));
  const fa = parseSafetensors(await Deno.readFile(`${a}/state.safetensors`));
  const fb = parseSafetensors(await Deno.readFile(`${b}/state.safetensors`));
  assert.equal(fb.metadata.step, "60");
  for (const name of ["params", "ema", "adam.m", "adam.v"]) {
    assert.deepEqual(
      fb.tensors.get(name)!.data,
      fa.tensors.get(name)!.data,
      `${name} (killed: ${status.signal} at step ${killedAt})`,
    );
  }
  assert.equal(fb.metadata.rng, fa.metadata.rng);
  // No temporary files are left behind by the completed run.
  for await (const e of Deno.readDir(b)) {
    assert.ok(!e.name.includes(".tmp-") || status.signal, e.name);
  }
  await Deno.remove(a, { recursive: true });
  await Deno.remove(b, { recursive: true });
});
