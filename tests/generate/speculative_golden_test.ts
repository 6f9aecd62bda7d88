/**
 * Greedy speculative and staged NAR decoding must reproduce plain greedy
 * decoding token for token: for every golden prompt (run.c's own output,
 * which plain greedy reproduces: golden_test.ts), every drafter and every
 * NAR mode, through to the end of a small context, and when the stop token
 * is accepted inside a drafted block.
 */
import assert from "node:assert/strict";
import { type DecoderContext, Engine } from "../../src/engine.ts";
import type { Decoder } from "../../src/generate/decoder.ts";
import {
  loadSpeculative,
  type SpeculativeSpec,
} from "../../src/generate/setup.ts";
import {
  type Draft,
  type Drafter,
  SpeculativeDecoder,
} from "../../src/generate/speculative.ts";
import { GOLDEN } from "../golden.ts";
import { F16_DRAFT, randomDraft } from "./speculative_fixtures.ts";

const CONFIGS: [string, SpeculativeSpec][] = [
  ["ngram", { drafter: "ngram" }],
  ["ngram n=1, fixed k=8", {
    drafter: "ngram",
    ngram: 1,
    k: 8,
    adaptive: false,
  }],
  ["layerskip", { drafter: "layerskip" }],
  ["layerskip 4 layers, fixed k=5", {
    drafter: "layerskip",
    draftLayers: 4,
    k: 5,
    adaptive: false,
  }],
  ["model (f16 file)", { drafter: "model", draftModel: F16_DRAFT, k: 8 }],
  ["model (random, mostly rejected)", {
    drafter: "model",
    draftModel: randomDraft(),
    k: 3,
    adaptive: false,
  }],
  ["q8", { drafter: "q8" }],
  ["multi (ngram, layerskip)", { drafter: "multi" }],
  ["multi (ngram, model, q8)", {
    drafter: "multi",
    members: ["ngram", "model", "q8"],
    draftModel: F16_DRAFT,
  }],
  ["jacobi", { nar: "jacobi" }],
  ["lookahead", { nar: "lookahead", window: 6 }],
  ["fixed (layerskip)", { nar: "fixed" }],
  ["fixed (q8)", { nar: "fixed", drafter: "q8", window: 4 }],
];

/** Runs every golden prompt, recording the blocks the decoder returned. */
function runGolden(
  engine: Engine,
  decoder: (ctx: DecoderContext) => Decoder,
) {
  const out = [];
  for (const g of GOLDEN) {
    const blocks: number[][] = [];
    const result = engine.complete({
      prompt: g.prompt,
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
      decoder: (ctx) => {
        const d = decoder(ctx);
        const next = d.next.bind(d);
        d.next = (context, max) => {
          const block = next(context, max);
          blocks.push(block);
          return block;
        };
        return d;
      },
    });
    out.push({ g, result, blocks });
  }
  return out;
}

const engine = await Engine.load();

for (const [name, spec] of CONFIGS) {
  Deno.test(`speculative greedy = plain greedy on the golden prompts: ${name}`, async () => {
    const s = await loadSpeculative(engine, spec);
    try {
      for (const { g, result } of runGolden(engine, s.decoder)) {
        assert.deepEqual(result.tokens, g.tokens, `${name}: "${g.prompt}"`);
        assert.equal(g.prompt + result.text + "\n", g.text);
        const end = g.tokens.length < g.steps + 1 ? "eos" : "length";
        assert.equal(result.finish_reason, end, `${name}: "${g.prompt}"`);
        const st = result.stats;
        assert.ok(
          st.target_passes > 0 && st.target_passes <= st.generated_tokens + 1,
        );
        assert.ok(st.accepted_tokens <= st.drafted_tokens);
      }
    } finally {
      s.dispose();
    }
  });
}

Deno.test("speculative greedy = plain greedy at the end of a small context", async () => {
  const ctx = 40;
  const small = await Engine.load({ contextLength: ctx });
  try {
    for (const [name, spec] of CONFIGS) {
      const s = await loadSpeculative(small, spec);
      try {
        for (const g of GOLDEN) {
          const r = small.complete({
            prompt: g.prompt,
            maxTokens: 256,
            sampling: { temperature: 0 },
            decoder: s.decoder,
          });
          // Positions 0..ctx-1 are fed; the token after the last is kept.
          assert.deepEqual(
            r.tokens,
            g.tokens.slice(0, ctx + 1),
            `${name}: "${g.prompt}"`,
          );
          assert.equal(r.finish_reason, "context", `${name}: "${g.prompt}"`);
        }
      } finally {
        s.dispose();
      }
    }
  } finally {
    small.dispose();
  }
});

/**
 * Proposes the golden continuation itself (then junk after it), so every
 * draft is accepted and the stop token that ends a golden run falls inside
 * a drafted block.
 */
class OracleDrafter implements Drafter {
  readonly name = "oracle";
  readonly cost = 0;
  proposed: number[][] = [];
  constructor(private readonly future: number[]) {}
  propose(context: readonly number[], k: number): Draft {
    const tokens: number[] = [];
    for (let i = 0; i < k; i++) {
      tokens.push(this.future[context.length + i] ?? 300 + i);
    }
    this.proposed.push(tokens);
    return { tokens, q: tokens.map(() => null) };
  }
}

Deno.test("speculative: a stop token accepted inside a drafted block ends the run there", () => {
  const ends = GOLDEN.filter((g) => g.tokens.length < g.steps + 1);
  assert.ok(ends.length > 0, "golden runs that end with a stop token");
  const stop = engine.stopTokens;
  for (const g of ends) {
    // run.c drops the final BOS from `tokens`; the model generated it.
    const future = [...g.tokens, stop.includes(1) ? 1 : stop[0], 7, 7, 7];
    const oracle = new OracleDrafter(future);
    const blocks: number[][] = [];
    const r = engine.complete({
      prompt: g.prompt,
      maxTokens: g.steps + 1 - g.n_prompt_tokens,
      sampling: { temperature: 0 },
      decoder: (ctx) => {
        const d = new SpeculativeDecoder(
          ctx.engine.model,
          oracle,
          ctx.sampler,
          ctx.coin,
          {
            k: 8,
            adaptive: false,
            stopTokens: ctx.engine.stopTokens,
          },
        );
        const next = d.next.bind(d);
        d.next = (c, m) => {
          const b = next(c, m);
          blocks.push(b);
          return b;
        };
        return d;
      },
    });
    assert.deepEqual(r.tokens, g.tokens, `"${g.prompt}"`);
    assert.equal(r.finish_reason, "eos");
    const last = blocks[blocks.length - 1];
    assert.ok(last.length >= 2, `the stop token came inside a block: ${last}`);
    assert.ok(stop.includes(last[last.length - 1]));
    // Every draft was accepted, and nothing was verified past the stop token.
    assert.equal(r.stats.accepted_tokens, r.stats.drafted_tokens);
    const lastDraft = oracle.proposed[oracle.proposed.length - 1];
    const at = lastDraft.findIndex((t) => stop.includes(t));
    assert.ok(
      at >= 0 && at < lastDraft.length - 1,
      "the draft ran past the stop token",
    );
    assert.equal(r.stats.drafted_tokens, r.stats.accepted_tokens);
  }
});

Deno.test("speculative greedy = plain greedy with a q8_0 target", async () => {
  const q8 = await Engine.load({ quant: "q8_0" });
  try {
    for (
      const spec of [
        { drafter: "layerskip", k: 5, adaptive: false },
        { drafter: "ngram" },
        { nar: "jacobi", window: 5 },
      ] as SpeculativeSpec[]
    ) {
      const s = await loadSpeculative(q8, spec);
      try {
        for (const g of GOLDEN) {
          const maxTokens = 120;
          const plain = q8.complete({
            prompt: g.prompt,
            maxTokens,
            sampling: { temperature: 0 },
          });
          const r = q8.complete({
            prompt: g.prompt,
            maxTokens,
            sampling: { temperature: 0 },
            decoder: s.decoder,
          });
          assert.deepEqual(r.tokens, plain.tokens, `${s.name}: "${g.prompt}"`);
        }
      } finally {
        s.dispose();
      }
    }
  } finally {
    q8.dispose();
  }
});

Deno.test("speculative greedy = plain greedy with a repetition penalty", async () => {
  const sampling = {
    temperature: 0,
    repetitionPenalty: 1.3,
    repetitionLastN: 16,
  };
  for (
    const spec of [{ drafter: "ngram" }, {
      drafter: "layerskip",
    }] as SpeculativeSpec[]
  ) {
    const s = await loadSpeculative(engine, spec);
    try {
      for (const g of GOLDEN) {
        const plain = engine.complete({
          prompt: g.prompt,
          maxTokens: 150,
          sampling,
        });
        const r = engine.complete({
          prompt: g.prompt,
          maxTokens: 150,
          sampling,
          decoder: s.decoder,
        });
        assert.deepEqual(r.tokens, plain.tokens, `${s.name}: "${g.prompt}"`);
      }
    } finally {
      s.dispose();
    }
  }
});
