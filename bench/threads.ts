/**
 * Prefill and decode speed with 1 and 2 threads (the worker pool, rows of
 * every product split), for random 42M and 110M models, all in one run;
 * llama2.c's run.c built with OpenMP at 1 and 2 threads beside it, as a
 * measure of what this machine gives a second thread right now.
 *
 *   deno task bench:threads [--shapes 42M,110M] [--runs 5] [--threads 2] [--quick]
 *
 * One and two threads alternate run by run, so a change in the machine's
 * load hits both; each figure is a median. Models are made once with
 * `deno task make-model` into $TMPDIR/seer-bench/. Prints a markdown table.
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine.ts";
import { loadModelFiles } from "../src/formats/load.ts";
import { Runtime } from "../src/kernels/runtime.ts";
import { ThreadPool } from "../src/worker/pool.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "42M,110M" },
    runs: { type: "string", default: "5" },
    threads: { type: "string", default: "2" },
    spin: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const threads = Number(values.threads);
const spinMs = values.spin === undefined ? undefined : Number(values.spin);
const root = new URL("../", import.meta.url).pathname;
const shared = new URL("../../shared/", import.meta.url).pathname;
const cache = `${Deno.env.get("TMPDIR") ?? "/tmp"}/seer-bench`;
await Deno.mkdir(cache, { recursive: true });
const tokenizer = `${shared}models/tokenizer.bin`;

async function modelFile(shape: string): Promise<string> {
  const path = `${cache}/random-${shape}.bin`;
  try {
    await Deno.stat(path);
  } catch {
    console.error(`making random ${shape} model → ${path}`);
    const p = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `${root}scripts/make_model.ts`,
        "--shape",
        shape,
        "--seed",
        "1",
        "--out",
        path,
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    if (!p.success) throw new Error(`make-model ${shape} failed`);
  }
  return path;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** run.c with OpenMP; undefined (with a note) when gcc cannot build it. */
async function buildRunC(): Promise<string | undefined> {
  const out = `${cache}/run-omp`;
  try {
    const p = await new Deno.Command("gcc", {
      args: [
        "-Ofast",
        "-march=native",
        "-fopenmp",
        "-o",
        out,
        `${shared}peers/llama2c/run.c`,
        "-lm",
      ],
    }).output();
    if (p.success) return out;
    console.error(new TextDecoder().decode(p.stderr));
  } catch {
    // no gcc
  }
  console.error(
    "note: run.c with OpenMP could not be built; its columns are skipped",
  );
  return undefined;
}

async function runC(bin: string, model: string, steps: number, n: number) {
  const p = await new Deno.Command(bin, {
    args: [model, "-z", tokenizer, "-t", "0", "-n", String(steps)],
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

const runc = await buildRunC();
const lines: string[] = [];
for (const shape of values.shapes!.split(",")) {
  const model = await modelFile(shape);
  const decodeTokens = ({ "15M": 128, "42M": 64, "110M": 32 }[shape] ?? 32) /
    (values.quick ? 4 : 1);
  const files = await loadModelFiles(model, { tokenizer });
  const one = await Engine.load({ files, runtime: await Runtime.load() });
  const pool = await ThreadPool.create({ threads, spinMs });
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
  `tokens/s, medians of ${runs} alternating runs, f32, 1 vs ${threads} threads (64-token prompt)\n`,
);
console.log(
  `| model | prefill 1 thread | prefill ${threads} | speed-up | decode 1 thread | decode ${threads} | speed-up | run.c OpenMP decode 1 → ${threads} |`,
);
console.log("|---|---|---|---|---|---|---|---|");
console.log(lines.join("\n"));
console.log(
  `\ntargets at 110M with 2 threads: decode ≥ 1.4×, prefill ≥ 1.5×`,
);
