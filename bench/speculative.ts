/**
 * Speculative and staged NAR decoding against plain AR decoding, measured
 * in one run (single thread, greedy):
 *
 * 1. verification cost: one batched pass over k + 1 tokens (the last
 *    context token and k drafts) relative to one decode step, k = 1..8;
 * 2. decoding: tokens/s of every drafter and NAR mode over the same prompts
 *    as plain AR (runs interleaved, medians), its speed-up, acceptance, mean
 *    accepted length (tokens per target pass) and whether the output equals
 *    plain greedy token for token.
 *
 *   deno task bench:spec [--quick] [--shapes 260K,42M,110M] [--runs 3]
 *
 * stories260K runs on the golden prompts. Random-weight models (made once
 * by `deno task make-model` into $TMPDIR/seer-bench/) time the machinery at
 * real sizes, drafted by a random 15M-shaped model; their weights mean
 * nothing, so their acceptance says nothing about real models.
 */
import { parseArgs } from "node:util";
import { Engine, type GenerateRequest } from "../src/engine.ts";
import {
  loadSpeculative,
  type SpeculativeSpec,
} from "../src/generate/setup.ts";
import { median, randomModel, shared, TOKENIZER_32K } from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "260K,42M,110M" },
    runs: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const quick = values.quick!;

const GOLDEN: { prompt: string }[] = JSON.parse(
  await Deno.readTextFile(`${shared}golden/stories260K-greedy.json`),
);

interface Workload {
  name: string;
  model?: string;
  tokenizer?: string;
  prompts: string[];
  maxTokens: number;
  modes: [string, SpeculativeSpec][];
}

async function workload(shape: string): Promise<Workload> {
  const common: [string, SpeculativeSpec][] = [
    ["ngram (prompt lookup)", { drafter: "ngram" }],
    ["q8 self-draft", { drafter: "q8" }],
    ["layerskip (half the layers)", { drafter: "layerskip" }],
    ["jacobi", { nar: "jacobi" }],
    ["lookahead", { nar: "lookahead" }],
  ];
  if (shape === "260K") {
    return {
      name: "stories260K (golden prompts)",
      prompts: GOLDEN.map((g) => g.prompt),
      maxTokens: quick ? 64 : 256,
      modes: [
        ...common,
        ["model: stories260K-f16.gguf", {
          drafter: "model",
          draftModel: `${shared}models/stories260K-f16.gguf`,
        }],
        ["multi (ngram, layerskip)", { drafter: "multi" }],
        ["multi (ngram, q8)", { drafter: "multi", members: ["ngram", "q8"] }],
        ["fixed (layerskip)", { nar: "fixed" }],
        ["fixed (q8)", { nar: "fixed", drafter: "q8" }],
      ],
    };
  }
  const draft = await randomModel("15M");
  return {
    name: `random ${shape}`,
    model: await randomModel(shape),
    tokenizer: TOKENIZER_32K,
    prompts: GOLDEN.slice(1, 3).map((g) => g.prompt),
    maxTokens: quick ? 16 : shape === "110M" ? 48 : 64,
    modes: [
      ...common,
      ["model: random 15M", { drafter: "model", draftModel: draft }],
      ["multi (ngram, q8)", { drafter: "multi", members: ["ngram", "q8"] }],
      ["fixed (q8)", { nar: "fixed", drafter: "q8" }],
    ],
  };
}

/**
 * Batched pass over k + 1 tokens relative to one forward, k = 1..8: the
 * median of ratios of adjacent timings, so drift on a shared machine hits
 * both sides of each ratio alike.
 */
function verifyCost(engine: Engine): number[] {
  const m = engine.model.fork();
  const vocab = m.config.vocabSize;
  const toks = Array.from({ length: 48 }, (_, i) => (i * 7919 + 13) % vocab);
  m.forwardBatch(toks.slice(0, 32), 0);
  const reps = quick ? 3 : engine.model.config.dim >= 512 ? 9 : 31;
  const time = (f: () => void) => {
    const t0 = performance.now();
    f();
    return performance.now() - t0;
  };
  const out: number[] = [];
  for (let k = 1; k <= 8; k++) {
    const ratios: number[] = [];
    for (let r = 0; r < reps; r++) {
      const step = time(() => m.forward(toks[32], 32));
      const batch = time(() =>
        m.forwardBatch(toks.slice(32, 33 + k), 32, true)
      );
      ratios.push(batch / step);
    }
    out.push(median(ratios));
  }
  m.dispose();
  return out;
}

interface Result {
  mode: string;
  tps: number;
  speedup: number;
  acceptance: number;
  meanLength: number;
  passesPerToken: number;
  draftShare: number;
  identical: boolean;
}

/** All prompts once; returns tokens/s over the whole set and the outputs. */
function pass(
  engine: Engine,
  w: Workload,
  decoder?: GenerateRequest["decoder"],
) {
  let tokens = 0, ms = 0;
  const outs: number[][] = [];
  const stats: Record<string, number> = {};
  for (const prompt of w.prompts) {
    const r = engine.complete({
      prompt,
      maxTokens: w.maxTokens,
      sampling: { temperature: 0 },
      decoder,
    });
    tokens += r.stats.generated_tokens;
    ms += r.stats.generation_ms;
    outs.push(r.tokens);
    for (const [k, v] of Object.entries(r.stats)) {
      stats[k] = (stats[k] ?? 0) + v;
    }
  }
  return { tps: tokens / ms * 1000, outs, stats };
}

async function bench(w: Workload) {
  const engine = await Engine.load({ model: w.model, tokenizer: w.tokenizer });
  const cost = verifyCost(engine);
  const results: Result[] = [];
  const plainOut = pass(engine, w).outs; // warm-up, and the reference output
  for (const [mode, spec] of w.modes) {
    const s = await loadSpeculative(engine, spec);
    pass(engine, w, s.decoder); // warm-up
    const fast: number[] = [];
    const ratios: number[] = [];
    let last: ReturnType<typeof pass> | undefined;
    for (let r = 0; r < runs; r++) {
      const plain = pass(engine, w).tps;
      last = pass(engine, w, s.decoder);
      fast.push(last.tps);
      ratios.push(last.tps / plain);
    }
    s.dispose();
    const st = last!.stats;
    results.push({
      mode,
      tps: median(fast),
      speedup: median(ratios),
      acceptance: st.accepted_tokens / Math.max(1, st.drafted_tokens),
      meanLength: st.emitted_tokens / st.target_passes,
      passesPerToken: st.target_passes / st.generated_tokens,
      draftShare: st.draft_ms / (st.draft_ms + st.verify_ms),
      identical: JSON.stringify(last!.outs) === JSON.stringify(plainOut),
    });
    console.error(`${w.name}: ${mode} done`);
  }
  const plainTps: number[] = [];
  for (let r = 0; r < runs; r++) plainTps.push(pass(engine, w).tps);
  engine.dispose();
  return { cost, results, plainTps: median(plainTps) };
}

const f = (x: number, d = 2) => x.toFixed(d);
const out: string[] = [];
for (const shape of values.shapes!.split(",")) {
  const w = await workload(shape);
  const { cost, results, plainTps } = await bench(w);
  out.push(
    `### ${w.name}: ${w.prompts.length} prompts × ${w.maxTokens} tokens, greedy`,
    "",
    `Verifying k drafts (k + 1 rows in one pass) / one decode step: ` +
      cost.map((c, i) => `k=${i + 1} ${f(c)}×`).join(", "),
    "",
    `Plain AR: ${f(plainTps, 0)} tok/s.`,
    "",
    "| mode | tok/s | speed-up vs AR | acceptance | tokens / target pass | target passes / token | draft share of time | output = plain greedy |",
    "|---|---|---|---|---|---|---|---|",
    ...results.map((r) =>
      `| ${r.mode} | ${f(r.tps, 0)} | ${f(r.speedup)}× | ${f(r.acceptance)} | ${
        f(r.meanLength)
      } | ${f(r.passesPerToken)} | ${f(r.draftShare)} | ${
        r.identical ? "yes" : "**no**"
      } |`
    ),
    "",
  );
}
console.log(
  `Medians of ${runs} runs; each speed-up is the median ratio of a run to the plain AR run just before it; single thread; machine shared with other jobs.\n`,
);
console.log(out.join("\n"));
