/**
 * Prefill and decode speed with 1 and 2 threads (the worker pool, rows of
 * every product split), for random 42M and 110M models, all in one run;
 * llama2.c's run.c built with OpenMP at 1 and 2 threads beside it, as a
 * measure of what this machine gives a second thread right now.
 *
 *   deno task bench:threads [--shapes 42M,110M] [--runs 5] [--threads 2] [--quick]
 *                           [--spin MS] [--chunks PER_THREAD]   (pool tuning)
 *
 * One and two threads alternate run by run, so a change in the machine's
 * load hits both; each figure is a median. Random models are made once
 * (bench/common.ts). Prints a markdown table.
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine.ts";
import { loadModelFiles } from "../src/formats/load.ts";
import { Runtime } from "../src/kernels/runtime.ts";
import { ThreadPool } from "../src/worker/pool.ts";
import { buildRunC, median, randomModel, TOKENIZER_32K } from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "42M,110M" },
    runs: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    spin: { type: "string" },
    chunks: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const threads = Number(values.threads);
const spinMs = values.spin === undefined ? undefined : Number(values.spin);
const chunksPerThread = values.chunks === undefined
  ? undefined
  : Number(values.chunks);

/** run.c's decode tokens/s with n OpenMP threads. */
async function runC(bin: string, model: string, steps: number, n: number) {
  const p = await new Deno.Command(bin, {
    args: [model, "-z", TOKENIZER_32K, "-t", "0", "-n", String(steps)],
    env: { OMP_NUM_THREADS: String(n) },
  }).output();
  const m = /achieved tok\/s: ([\d.]+)/.exec(
    new TextDecoder().decode(p.stderr),
  );
  if (!m) throw new Error("run.c printed no tok/s");
  return Number(m[1]);
}

interface Speeds {
  prefill: number[];
  decode: number[];
}

function once(engine: Engine, decodeTokens: number, into: Speeds) {
  const vocab = engine.model.config.vocabSize;
  // A fixed pseudo-random prompt of 64 ids (BOS first), as bench/decode.ts.
  const prompt = [
    1,
    ...Array.from({ length: 63 }, (_, i) => (i * 7919 + 13) % vocab),
  ];
  const p = engine.complete({
    prompt,
    maxTokens: 1,
    sampling: { temperature: 0 },
  });
  into.prefill.push(p.stats.prompt_tokens_per_second);
  const d = engine.complete({
    prompt: [1],
    maxTokens: decodeTokens,
    sampling: { temperature: 0 },
  });
  into.decode.push(d.stats.tokens_per_second);
}

/**
 * How much arithmetic two threads get done together relative to one, right
 * now: the same busy loop in 1 and then 2 workers. On an idle 2-core
 * machine this is ≈ 2; shared vCPUs (SMT siblings, other tenants) give less,
 * and no split can beat it.
 */
async function cpuScaling(): Promise<number> {
  const code = `self.onmessage = () => {
    let x = 0;
    for (let i = 0; i < 3e8; i++) x = (x + i * 0.5) % 1e9;
    self.postMessage(x);
  };`;
  const url = URL.createObjectURL(
    new Blob([code], { type: "text/javascript" }),
  );
  const busy = async (n: number) => {
    const workers = Array.from(
      { length: n },
      () => new Worker(url, { type: "module" }),
    );
    const t0 = performance.now();
    await Promise.all(workers.map((w) =>
      new Promise((r) => {
        w.onmessage = r;
        w.postMessage(0);
      })
    ));
    const ms = performance.now() - t0;
    for (const w of workers) w.terminate();
    return n / ms; // loops per ms
  };
  const one = await busy(1);
  const two = await busy(threads);
  URL.revokeObjectURL(url);
  return two / one;
}

const runc = await buildRunC({ openmp: true });
const cpu = await cpuScaling();
const lines: string[] = [];
for (const shape of values.shapes!.split(",")) {
  const model = await randomModel(shape);
  const decodeTokens = ({ "15M": 128, "42M": 64, "110M": 32 }[shape] ?? 32) /
    (values.quick ? 4 : 1);
  const files = await loadModelFiles(model, { tokenizer: TOKENIZER_32K });
  const one = await Engine.load({ files, runtime: await Runtime.load() });
  const pool = await ThreadPool.create({ threads, spinMs, chunksPerThread });
  const many = await Engine.load({ files, runtime: pool.runtime });
  // Warm up both (compilation tiers, page faults of fresh memory).
  once(one, 4, { prefill: [], decode: [] });
  once(many, 4, { prefill: [], decode: [] });
  const s1: Speeds = { prefill: [], decode: [] };
  const sN: Speeds = { prefill: [], decode: [] };
  const c1: number[] = [], cN: number[] = [];
  for (let r = 0; r < runs; r++) {
    once(one, decodeTokens, s1);
    once(many, decodeTokens, sN);
    if (runc) {
      c1.push(await runC(runc, model, decodeTokens + 1, 1));
      cN.push(await runC(runc, model, decodeTokens + 1, threads));
    }
  }
  one.dispose();
  many.dispose();
  await pool.dispose();
  const f = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  const [p1, pN, d1, dN] = [s1.prefill, sN.prefill, s1.decode, sN.decode].map(
    median,
  );
  lines.push(
    `| ${shape} | ${f(p1)} | ${f(pN)} | ${ratio(pN, p1)} | ${f(d1)} | ${
      f(dN)
    } | ${ratio(dN, d1)} | ${
      runc
        ? `${f(median(c1))} → ${f(median(cN))} (${
          ratio(median(cN), median(c1))
        })`
        : "n/a"
    } |`,
  );
  console.error(`${shape}: done`);
}

console.log(
  `tokens/s, medians of ${runs} alternating runs, f32, 1 vs ${threads} threads (64-token prompt)`,
);
console.log(
  `CPU the machine gave ${threads} busy threads at the start: ${
    cpu.toFixed(2)
  }× one thread\n`,
);
console.log(
  `| model | prefill 1 thread | prefill ${threads} | speed-up | decode 1 thread | decode ${threads} | speed-up | run.c OpenMP decode 1 → ${threads} |`,
);
console.log("|---|---|---|---|---|---|---|---|");
console.log(lines.join("\n"));
console.log(
  `\ntargets at 110M with 2 threads: decode ≥ 1.4×, prefill ≥ 1.5×`,
);
