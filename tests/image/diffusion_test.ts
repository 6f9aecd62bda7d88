import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import { ddimTimesteps, sample, Schedule } from "../../src/image/diffusion.ts";
import { Rng } from "../../src/image/rng.ts";
import { assertPasses, momentTests } from "../stats.ts";

const rt = await Runtime.load();

Deno.test("schedules: ᾱ falls from ≈1 to ≈0; linear matches DDPM's published end value", () => {
  const lin = new Schedule({ schedule: "linear", steps: 1000 });
  const cos = new Schedule({ schedule: "cosine", steps: 1000 });
  for (const s of [lin, cos]) {
    for (let t = 1; t < s.T; t++) assert.ok(s.alphaBar[t] < s.alphaBar[t - 1]);
    assert.ok(s.alphaBar[0] > 0.999);
  }
  // DDPM's linear schedule (β 1e-4..0.02, T = 1000) ends at ᾱ ≈ 4.04e-5.
  assert.ok(
    Math.abs(lin.alphaBar[999] - 4.04e-5) < 0.05e-5,
    `${lin.alphaBar[999]}`,
  );
  // The cosine schedule is the closed form f(t+1)/f(0) until β hits its cap.
  const f = (u: number) =>
    Math.cos((u / 1000 + 0.008) / 1.008 * Math.PI / 2) ** 2;
  for (const t of [0, 100, 500, 900]) {
    assert.ok(Math.abs(cos.alphaBar[t] - f(t + 1) / f(0)) < 1e-12);
  }
  assert.ok(cos.alphaBar[999] < 1e-4);
});

Deno.test("forward process: x_t has mean √ᾱ·x0 and variance 1 − ᾱ (z-tests, α = 0.001)", () => {
  const rng = new Rng(rt, 42);
  for (const kind of ["linear", "cosine"] as const) {
    const s = new Schedule({ schedule: kind, steps: 1000 });
    for (const t of [0, 250, 999]) {
      for (const x0v of [-1, 0.4]) {
        const n = 20000;
        const eps = rng.normal(n);
        const xt = new Float32Array(n);
        s.noise(xt, new Float32Array(n).fill(x0v), eps, t);
        const mean = Math.sqrt(s.alphaBar[t]) * x0v,
          variance = 1 - s.alphaBar[t];
        const r = momentTests(xt, { mean, variance, mu4: 3 * variance ** 2 });
        assertPasses(r.mean, `${kind} t=${t} x0=${x0v} mean`);
        assertPasses(r.variance, `${kind} t=${t} x0=${x0v} variance`);
      }
    }
  }
  rng.free();
});

Deno.test("DDIM timesteps: trailing spacing starts at T − 1 and rises strictly", () => {
  assert.deepEqual(ddimTimesteps(1000, 4), [249, 499, 749, 999]);
  const ts = ddimTimesteps(1000, 50);
  assert.equal(ts.length, 50);
  assert.equal(ts[49], 999);
  for (let i = 1; i < ts.length; i++) assert.ok(ts[i] > ts[i - 1]);
  assert.deepEqual(
    ddimTimesteps(1000, 1000),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

/**
 * With an exact ε-predictor for data that is a single point x*, every
 * sampler must land on x*: ε(x_t) = (x_t − √ᾱ x*)/√(1 − ᾱ).
 */
function pointEps(s: Schedule, target: number) {
  return (x: Float32Array, t: number) =>
    x.map((v) =>
      (v - Math.sqrt(s.alphaBar[t]) * target) / Math.sqrt(1 - s.alphaBar[t])
    );
}

Deno.test("samplers recover the data point an exact ε-predictor describes", async () => {
  const s = new Schedule({ schedule: "cosine", steps: 1000 });
  const rng = new Rng(rt, 3);
  for (
    const [sampler, steps, eta] of [["ddim", 20, 0], ["ddim", 50, 1], [
      "ddpm",
      1000,
      0,
    ]] as const
  ) {
    const x = await sample(s, pointEps(s, 0.3), 64, {
      sampler,
      steps,
      eta,
      normal: (n) => rng.normal(n),
    });
    for (const v of x) assert.ok(Math.abs(v - 0.3) < 1e-4, `${sampler}: ${v}`);
  }
  rng.free();
});

Deno.test("DDIM with η = 0 is deterministic per seed; DDPM differs per seed", async () => {
  const s = new Schedule({ schedule: "cosine", steps: 1000 });
  // A predictor that is not exact, so the starting noise shows in the result.
  const eps = (x: Float32Array, t: number) =>
    x.map((v) => 0.5 * v * Math.sqrt(1 - s.alphaBar[t]));
  const run = async (seed: number, sampler: "ddim" | "ddpm") => {
    const rng = new Rng(rt, seed);
    const x = await sample(s, eps, 32, {
      sampler,
      steps: 20,
      eta: 0,
      normal: (n) => rng.normal(n),
    });
    rng.free();
    return x;
  };
  assert.deepEqual(await run(1, "ddim"), await run(1, "ddim"));
  assert.notDeepEqual(await run(1, "ddim"), await run(2, "ddim"));
  assert.deepEqual(await run(5, "ddpm"), await run(5, "ddpm"));
  assert.notDeepEqual(await run(5, "ddpm"), await run(6, "ddpm"));
});

Deno.test("samplers: bad step counts and an abort are clear errors", async () => {
  const s = new Schedule({ schedule: "cosine", steps: 1000 });
  const rng = new Rng(rt, 1);
  const o = { eta: 0, normal: (n: number) => rng.normal(n) };
  const eps = (x: Float32Array) => x;
  for (const steps of [0, -3, 1001, 2.5, NaN]) {
    await assert.rejects(
      sample(s, eps, 4, { ...o, sampler: "ddim", steps }),
      (e: Error & { code?: string }) =>
        e.code === "invalid_argument" && /DDIM steps/.test(e.message),
    );
  }
  const ctl = new AbortController();
  await assert.rejects(
    sample(s, eps, 4, {
      ...o,
      sampler: "ddim",
      steps: 10,
      signal: ctl.signal,
      onStep: (p) => p.step === 3 ? ctl.abort() : undefined,
    }),
    (e: Error & { code?: string }) => e.code === "aborted",
  );
  rng.free();
});
