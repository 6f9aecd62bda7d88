/**
 * Prefill and decode speed, single thread: seer f32 and q8_0 beside
 * llama2.c's run.c (built here from ../shared/peers with gcc -Ofast
 * -march=native), all in one run so the ratios compare like with like.
 *
 *   deno task bench:decode [--quick] [--shapes 260K,15M,42M,110M] [--runs 3]
 *
 * Random-weight models are made once into $TMPDIR/seer-bench/ (reused
 * afterwards; bench/common.ts). Prints a markdown table.
 */
import { Engine } from "../src/engine.ts";
import { parseArgs } from "node:util";
import {
  buildRunC,
  median,
  randomModel,
  root,
  TOKENIZER_32K,
} from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "260K,15M,42M,110M" },
    runs: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  },
});
const runs = Number(values.runs);
const shapes = values.shapes!.split(",");

interface Shape {
  model: string;
  tokenizer: string;
  decodeTokens: number;
}

async function shape(name: string): Promise<Shape> {
  if (name === "260K") {
    return {
      model: `${root}models/stories260K.bin`,
      tokenizer: `${root}models/tok512.bin`,
      decodeTokens: 500,
    };
  }
  const model = await randomModel(name);
  const decodeTokens = { "15M": 128, "42M": 64, "110M": 32 }[name] ?? 32;
  return {
    model,
    tokenizer: TOKENIZER_32K,
    decodeTokens: values.quick ? Math.ceil(decodeTokens / 4) : decodeTokens,
  };
}

async function runC(bin: string, s: Shape, steps: number): Promise<number> {
  const p = await new Deno.Command(bin, {
    args: [s.model, "-z", s.tokenizer, "-t", "0", "-n", String(steps)],
  }).output();
  const m = /achieved tok\/s: ([\d.]+)/.exec(
    new TextDecoder().decode(p.stderr),
  );
  if (!m) throw new Error("run.c printed no tok/s");
  return Number(m[1]);
}

interface Row {
  shape: string;
  runc?: number;
  f32: { prefill: number; decode: number };
  q8: { prefill: number; decode: number };
}

async function measure(s: Shape, quant?: "q8_0") {
  const engine = await Engine.load({
    model: s.model,
    tokenizer: s.tokenizer,
    quant,
  });
  const vocab = engine.model.config.vocabSize;
  // A fixed pseudo-random prompt of 64 ids (BOS first) for prefill.
  const prompt = [
    1,
    ...Array.from({ length: 63 }, (_, i) => (i * 7919 + 13) % vocab),
  ];
  // One untimed run first: WASM and JS tier up to optimized code (run.c
  // has no such warm-up to do).
  engine.complete({
    prompt,
    maxTokens: s.decodeTokens,
    sampling: { temperature: 0 },
  });
  const prefill: number[] = [];
  const decode: number[] = [];
  for (let r = 0; r < runs; r++) {
    const p = engine.complete({
      prompt,
      maxTokens: 1,
      sampling: { temperature: 0 },
    });
    prefill.push(p.stats.prompt_tokens_per_second);
    const d = engine.complete({
      prompt: [1],
      maxTokens: s.decodeTokens,
      sampling: { temperature: 0 },
    });
    // BOS or EOS can end a run early; count only what was generated.
    decode.push(d.stats.tokens_per_second);
  }
  engine.dispose();
  return { prefill: median(prefill), decode: median(decode) };
}

const runc = await buildRunC();
const rows: Row[] = [];
for (const name of shapes) {
  const s = await shape(name);
  const row: Row = {
    shape: name,
    f32: await measure(s),
    q8: await measure(s, "q8_0"),
  };
  if (runc) {
    const xs: number[] = [];
    for (let r = 0; r < runs; r++) {
      xs.push(await runC(runc, s, s.decodeTokens + 1));
    }
    row.runc = median(xs);
  }
  rows.push(row);
  console.error(`${name}: done`);
}

const f = (x: number) => x >= 100 ? x.toFixed(0) : x.toFixed(1);
const lines = [
  "| model | run.c -Ofast decode | seer f32 prefill | seer f32 decode | f32 / run.c | seer q8_0 prefill | seer q8_0 decode | q8_0 / f32 decode |",
  "|---|---|---|---|---|---|---|---|",
  ...rows.map((r) =>
    `| ${r.shape} | ${r.runc ? f(r.runc) : "n/a"} | ${f(r.f32.prefill)} | ${
      f(r.f32.decode)
    } | ${r.runc ? (r.f32.decode / r.runc).toFixed(2) + "×" : "n/a"} | ${
      f(r.q8.prefill)
    } | ${f(r.q8.decode)} | ${(r.q8.decode / r.f32.decode).toFixed(2)}× |`
  ),
];
console.log(`tokens/s, medians of ${runs} runs, single thread\n`);
console.log(lines.join("\n"));
console.log(
  "\ntargets: f32 decode ≥ 1.0× run.c at 42M and 110M; q8_0 decode ≥ 1.6× f32 at 110M; stories260K decode ≥ 5,000 tok/s",
);
