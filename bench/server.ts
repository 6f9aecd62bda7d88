/**
 * The server under load on loopback: requests/s, time to first token and
 * tokens/s at concurrency 1, 4 and 16, each level bounded in requests and
 * time. The server runs as its own process (`src/server/main.ts`) so the
 * client's work does not share its event loop; the engine alone, in this
 * process and the same run, gives the baseline the server is compared to.
 *
 *   deno task bench:server [--shapes 260K,15M] [--slots 4] [--seconds 30] [--write]
 *
 * 260K is the built-in model (cheap tokens: the server's own overhead
 * shows); 15M is a random-weight llama2.c 15M made once with
 * `deno task make-model` into $TMPDIR/seer-bench/ (a per-token cost where
 * overhead should vanish). Prints markdown; --write puts it in
 * bench/RESULTS.md under "## Server" (other sections are left alone).
 */
import { parseArgs } from "node:util";
import { Engine } from "../src/engine.ts";
import { randomModel, root, TOKENIZER_32K } from "./common.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    shapes: { type: "string", default: "260K,15M" },
    slots: { type: "string", default: "4" },
    seconds: { type: "string", default: "30" },
    write: { type: "boolean", default: false },
  },
});
const SLOTS = Number(values.slots);
const SECONDS = Number(values.seconds);
const LEVELS = [1, 4, 16];
const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily wanted to",
  "Tom and his",
  "One day, a bird",
  "The sun was",
  "Max had a",
  "There was a big",
];

interface Shape {
  name: string;
  model?: string;
  tokenizer?: string;
  /** Requests per concurrency level, and tokens per request. */
  requests: number;
  maxTokens: number;
}

async function shape(name: string): Promise<Shape> {
  if (name === "260K") {
    return { name: "stories260K (built in)", requests: 48, maxTokens: 64 };
  }
  const model = await randomModel(name);
  return {
    name: `random ${name}`,
    model,
    tokenizer: TOKENIZER_32K,
    requests: 16,
    maxTokens: 32,
  };
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

/**
 * The engine alone: greedy tokens/s over the same prompts and limits, one
 * warm-up pass dropped. Measured before and after the server so that a
 * change in the machine's load shows up as a gap between the two.
 */
async function baseline(s: Shape): Promise<number[]> {
  const engine = await Engine.load({ model: s.model, tokenizer: s.tokenizer });
  engine.complete({
    prompt: PROMPTS[0],
    maxTokens: s.maxTokens,
    sampling: { temperature: 0 },
  });
  const rates: number[] = [];
  for (const prompt of PROMPTS) {
    const r = engine.complete({
      prompt,
      maxTokens: s.maxTokens,
      sampling: { temperature: 0 },
    });
    rates.push(r.stats.tokens_per_second);
  }
  engine.dispose();
  return rates;
}

async function startServer(s: Shape) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}src/server/main.ts`,
      "--port",
      "0",
      "--slots",
      String(SLOTS),
      "--max-queue",
      "256",
      ...(s.model ? ["--model", s.model] : []),
      ...(s.tokenizer ? ["--tokenizer", s.tokenizer] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const r = await reader.read();
    if (r.done) throw new Error(`the server exited: ${out}`);
    out += r.value;
  }
  (async () => {
    while (!(await reader.read()).done);
  })();
  const url = out.match(/listening on (http:\/\/\S+)/)![1];
  for (;;) {
    const res = await fetch(`${url}/health`).catch(() => undefined);
    const ok = res?.status === 200;
    await res?.body?.cancel();
    if (ok) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url, child };
}

interface Sample {
  ttft: number;
  total: number;
  tokens: number;
}

/** One streamed greedy request; times the first text chunk and the end. */
async function request(
  url: string,
  prompt: string,
  maxTokens: number,
): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
    }),
  });
  if (res.status !== 200) {
    throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  }
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let ttft = NaN, text = "";
  for (;;) {
    const r = await reader.read();
    if (r.done) break;
    if (Number.isNaN(ttft)) ttft = performance.now() - t0;
    text += r.value;
  }
  const total = performance.now() - t0;
  const events = text.trimEnd().split("\n\n").map((e) =>
    e.slice("data: ".length)
  );
  if (events.at(-1) !== "[DONE]") {
    throw new Error("the stream did not end with [DONE]");
  }
  const last = JSON.parse(events.at(-2)!);
  return { ttft, total, tokens: last.usage.completion_tokens };
}

async function level(url: string, s: Shape, concurrency: number) {
  const samples: Sample[] = [];
  let next = 0;
  const t0 = performance.now();
  const deadline = t0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < s.requests && performance.now() < deadline) {
      const i = next++;
      samples.push(
        await request(url, PROMPTS[i % PROMPTS.length], s.maxTokens),
      );
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const tokens = samples.reduce((a, x) => a + x.tokens, 0);
  return {
    concurrency,
    requests: samples.length,
    rps: samples.length / wall,
    ttft50: quantile(samples.map((x) => x.ttft), 0.5),
    ttft90: quantile(samples.map((x) => x.ttft), 0.9),
    aggregate: tokens / wall,
    // As one client sees it: its tokens over its whole request time.
    perRequest: quantile(samples.map((x) => x.tokens / (x.total / 1000)), 0.5),
  };
}

const r1 = (x: number) => x.toFixed(1);
const tables: string[] = [];
for (const name of values.shapes!.split(",")) {
  const s = await shape(name);
  const before = await baseline(s);
  const { url, child } = await startServer(s);
  // Warm the server (compilation, first forks) before timing.
  await Promise.all(PROMPTS.slice(0, SLOTS).map((p) => request(url, p, 4)));
  const rows = [];
  for (const c of LEVELS) rows.push(await level(url, s, c));
  child.kill("SIGTERM");
  await child.status;
  const after = await baseline(s);
  const engineRate = quantile([...before, ...after], 0.5);
  tables.push([
    `**${s.name}**: ${s.maxTokens} tokens per request, at most ${s.requests} requests or ${SECONDS} s per level; ` +
    `engine alone in the same run: ${r1(engineRate)} tokens/s (median; ${
      r1(quantile(before, 0.5))
    } before the server ran, ${r1(quantile(after, 0.5))} after).`,
    "",
    "| concurrency | requests | requests/s | TTFT p50 (ms) | TTFT p90 (ms) | tokens/s, all streams | tokens/s per request (p50) | all streams / engine alone |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...rows.map((r) =>
      `| ${r.concurrency} | ${r.requests} | ${r1(r.rps)} | ${r1(r.ttft50)} | ${
        r1(r.ttft90)
      } | ${r1(r.aggregate)} | ${r1(r.perRequest)} | ${
        (r.aggregate / engineRate).toFixed(2)
      } |`
    ),
  ].join("\n"));
}

const report = [
  `${SLOTS} slots; greedy, streamed (SSE) completions from the \`openai\`-style endpoint; client and server are ` +
  `separate processes on one 2-vCPU machine that other work shared while this ran, so read ratios, not absolutes. ` +
  `TTFT counts from sending the request to the first streamed token, queueing included.`,
  "",
  tables.join("\n\n"),
].join("\n");
console.log(report);

if (values.write) {
  const path = new URL("RESULTS.md", import.meta.url);
  let doc = "# Benchmark results\n";
  try {
    doc = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const section = `## Server\n\n\`deno task bench:server\` (${
    new Date().toISOString().slice(0, 10)
  })\n\n${report}\n`;
  const start = doc.search(/^## Server$/m);
  if (start < 0) {
    doc = doc.trimEnd() + "\n\n" + section;
  } else {
    const rest = doc.slice(start + 1).search(/^## /m);
    const end = rest < 0 ? doc.length : start + 1 + rest;
    doc = doc.slice(0, start) + section +
      (end < doc.length ? "\n" + doc.slice(end) : "");
  }
  await Deno.writeTextFile(path, doc);
  console.log(`written to ${path.pathname}`);
}
