/**
 * Image models, single thread: training throughput (images/s) and sampling
 * cost (ms per image per denoising step) of the DiT, with the WASM f32
 * kernels and, in the same run, with their plain-TS twins (the same model
 * code calling the twins on the same memory). Also the three GEMM forms at
 * a training shape. Prints a markdown table; writes nothing.
 *
 *   deno run -A bench/images.ts [--runs 5] [--dim 64] [--batch 48]
 *
 * (defaults: the shipped base model's shape and batch).
 */
import { parseArgs } from "node:util";
import { Runtime } from "../src/kernels/runtime.ts";
import type { KernelExports } from "../src/kernels/exports.ts";
import * as refMat from "../src/kernels/ref/train_matmul.ts";
import * as refOps from "../src/kernels/ref/train_ops.ts";
import * as refAttn from "../src/kernels/ref/train_attention.ts";
import * as refAct from "../src/kernels/ref/activation.ts";
import { loadMnist } from "../src/image/mnist.ts";
import {
  defaultTrainOptions,
  DiffusionTrainer,
  type TrainOptions,
} from "../src/image/train.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    dim: { type: "string", default: "64" },
    batch: { type: "string", default: "48" },
  },
});
const RUNS = Number(values.runs);
const rt = await Runtime.load();
const { train } = loadMnist();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[(s.length - 1) / 2]
    : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function time(fn: () => void, runs = RUNS): number {
  fn(); // warm-up (compiles, allocates the activation buffers)
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/**
 * The kernels the image models call, implemented by the plain-TS twins on
 * views of the same WASM memory; everything else (PRNG, argmax) stays WASM.
 */
function twinKernels(): KernelExports {
  const mem = rt.memory;
  const F = (p: number) => new Float32Array(mem.buffer, p);
  const I = (p: number) => new Int32Array(mem.buffer, p);
  const twins: Partial<KernelExports> = {
    gemm_nn_f32: (c, a, b, m, n, k, lda, ldb, ldc, beta) =>
      refMat.gemm_nn_f32(F(c), F(a), F(b), m, n, k, lda, ldb, ldc, beta),
    gemm_tn_f32: (c, a, b, m, n, k, lda, ldb, ldc, beta) =>
      refMat.gemm_tn_f32(F(c), F(a), F(b), m, n, k, lda, ldb, ldc, beta),
    gemm_nt_f32: (c, a, b, _s, m, n, k, lda, ldb, ldc, beta) =>
      refMat.gemm_nt_f32(F(c), F(a), F(b), m, n, k, lda, ldb, ldc, beta),
    layernorm_rows_f32: (o, r, x, rows, cols, eps) =>
      refOps.layernorm_rows_f32(F(o), F(r), F(x), rows, cols, eps),
    layernorm_rows_backward_f32: (dx, dy, h, r, rows, cols) =>
      refOps.layernorm_rows_backward_f32(F(dx), F(dy), F(h), F(r), rows, cols),
    modulate_f32: (o, x, sh, sc, rows, cols) =>
      refOps.modulate_f32(F(o), F(x), F(sh), F(sc), rows, cols),
    modulate_backward_f32: (dx, dsh, dsc, dy, x, sc, rows, cols) =>
      refOps.modulate_backward_f32(
        F(dx),
        F(dsh),
        F(dsc),
        F(dy),
        F(x),
        F(sc),
        rows,
        cols,
      ),
    gate_add_f32: (h, g, y, rows, cols) =>
      refOps.gate_add_f32(F(h), F(g), F(y), rows, cols),
    gate_add_backward_f32: (dy, dg, dh, y, g, rows, cols) =>
      refOps.gate_add_backward_f32(F(dy), F(dg), F(dh), F(y), F(g), rows, cols),
    bias_add_f32: (y, b, rows, cols) =>
      refOps.bias_add_f32(F(y), F(b), rows, cols),
    sum_rows_f32: (o, x, rows, cols) =>
      refOps.sum_rows_f32(F(o), F(x), rows, cols),
    gelu_fast_f32: (o, x, n) => refOps.gelu_fast_f32(F(o), F(x), n),
    gelu_backward_f32: (dx, x, dy, n) =>
      refOps.gelu_backward_f32(F(dx), F(x), F(dy), n),
    silu_f32: (o, x, n) => refAct.silu_f32(F(o), F(x), n),
    silu_backward_f32: (dx, x, dy, n) =>
      refOps.silu_backward_f32(F(dx), F(x), F(dy), n),
    embedding_f32: (o, t, idx, n, cols) =>
      refOps.embedding_f32(F(o), F(t), I(idx), n, cols),
    embedding_backward_f32: (dt, idx, dy, n, cols) =>
      refOps.embedding_backward_f32(F(dt), I(idx), F(dy), n, cols),
    mse_loss_f32: (g, p, t, n, s) =>
      refOps.mse_loss_f32(F(g), F(p), F(t), n, s),
    sumsq_f32: (x, n) => refOps.sumsq_f32(F(x), n),
    adamw_f32: (p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2, gs) =>
      refOps.adamw_f32(
        F(p),
        F(g),
        F(m),
        F(v),
        n,
        lr,
        b1,
        b2,
        eps,
        wd,
        bc1,
        bc2,
        gs,
      ),
    ema_f32: (a, x, n, d) => refOps.ema_f32(F(a), F(x), n, d),
    mha_forward_f32: (o, p, q, _s, b, t, h, hd) =>
      refAttn.mha_forward_f32(F(o), F(p), F(q), b, t, h, hd),
    mha_backward_f32: (dq, dout, q, p, _s, b, t, h, hd) =>
      refAttn.mha_backward_f32(F(dq), F(dout), F(q), F(p), b, t, h, hd),
  };
  return {
    ...(rt.k as unknown as Record<string, unknown>),
    ...twins,
  } as unknown as KernelExports;
}

/** A runtime whose `k` is the twins: same memory and allocator. */
const twinRt = Object.create(rt, { k: { value: twinKernels() } }) as Runtime;

function trainer(r: Runtime, batch: number): DiffusionTrainer {
  const d = defaultTrainOptions("base");
  const o: TrainOptions = {
    ...d,
    outDir: "/nonexistent",
    batch,
    model: { ...d.model, dim: Number(values.dim) },
  };
  return new DiffusionTrainer(r, o, train);
}

const rows: string[] = [];
/** A table row; rates put WASM over TS in the ratio, times TS over WASM. */
const row = (
  what: string,
  wasm: number,
  ts: number | undefined,
  unit: string,
) => {
  const rate = unit !== "ms";
  const fmt = (v: number) => `${v.toFixed(rate ? 1 : 2)} ${unit}`;
  const ratio = ts === undefined
    ? "—"
    : `${(rate ? wasm / ts : ts / wasm).toFixed(1)}×`;
  rows.push(
    `| ${what} | ${fmt(wasm)} | ${
      ts === undefined ? "—" : fmt(ts)
    } | ${ratio} |`,
  );
};

// GEMMs at the base model's training shape: 64 images × 49 tokens, dim × 4·dim.
{
  const dim = Number(values.dim), m = 64 * 49, n = 4 * dim, k = dim;
  const a = rt.alloc(m * k * 4),
    b = rt.alloc(n * k * 4),
    c = rt.alloc(m * n * 4),
    s = rt.alloc(n * k * 4);
  rt.f32(a, m * k).fill(0.5);
  rt.f32(b, n * k).fill(0.25);
  const g = (ms: number) => 2 * m * n * k / ms / 1e6;
  const tw = twinKernels();
  for (
    const [name, fn] of [
      [
        "gemm_nt_f32 (forward X·Wᵀ)",
        (kk: KernelExports) => kk.gemm_nt_f32(c, a, b, s, m, n, k, k, k, n, 0),
      ],
      [
        "gemm_nn_f32 (dX = dY·W)",
        (kk: KernelExports) => kk.gemm_nn_f32(a, c, b, m, k, n, n, k, k, 0),
      ],
      [
        "gemm_tn_f32 (dW += dYᵀ·X)",
        (kk: KernelExports) => kk.gemm_tn_f32(b, c, a, n, k, m, n, k, k, 1),
      ],
    ] as const
  ) {
    const w = time(() => fn(rt.k));
    const t = time(() => fn(tw), 1);
    row(`${name} ${m}×${n}×${k}`, g(w), g(t), "GFLOP/s");
  }
  for (const p of [a, b, c, s]) rt.free(p);
}

// Training: images per second of whole optimizer steps.
{
  const B = Number(values.batch);
  const tr = trainer(rt, B);
  const w = time(() => tr.trainStep());
  // The twins take far longer: one small-batch step, scaled per image.
  const small = 4;
  const trW4 = trainer(rt, small), trT4 = trainer(twinRt, small);
  const w4 = time(() => trW4.trainStep());
  const t4 = time(() => trT4.trainStep(), 1);
  row(
    `base model training step, batch ${B} (dim ${values.dim}, depth 4, 49 tokens)`,
    B / (w / 1000),
    undefined,
    "images/s",
  );
  row(
    `base model training step, batch ${small}`,
    small / (w4 / 1000),
    small / (t4 / 1000),
    "images/s",
  );
  // Sampling: one forward of a guided batch (cond + uncond rows) per step.
  for (const images of [1, 16]) {
    const rowsN = 2 * images, S = 14;
    const x = new Float32Array(rowsN * S * S).fill(0.1);
    const t = new Int32Array(rowsN).fill(500),
      y = new Int32Array(rowsN).fill(3);
    const fw = time(() => tr.dit.forward(x, t, y, rowsN));
    const ft = images === 1
      ? time(() => trT4.dit.forward(x, t, y, rowsN), 1)
      : undefined;
    row(
      `base model sampling, per image per step (CFG; ${images} image${
        images > 1 ? "s" : ""
      } per batch)`,
      fw / images,
      ft === undefined ? undefined : ft / images,
      "ms",
    );
  }
  for (const x of [tr, trW4, trT4]) x.dispose();
}

console.log(
  `| what | WASM f32 | plain TS | WASM vs TS |\n|---|---:|---:|---:|\n${
    rows.join("\n")
  }`,
);
console.log(
  `\nmedians of ${RUNS} runs (plain TS: 1 run); ${
    new Date().toISOString().slice(0, 10)
  }, shared 2-core machine`,
);
