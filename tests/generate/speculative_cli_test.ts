/**
 * The speculative and NAR flags as a user runs them: the golden greedy run
 * comes back unchanged with the speculation counters in `--json` stats,
 * and bad flag combinations end in one line that says what to do.
 */
import assert from "node:assert/strict";
import { runCli } from "../cli/run.ts";
import { GOLDEN } from "../golden.ts";
import { F16_DRAFT } from "./speculative_fixtures.ts";

function cli(args: string[]) {
  return runCli(["generate", ...args]);
}

Deno.test("cli: --speculative and --nar keep the golden greedy output", async () => {
  const g = GOLDEN[2];
  const runs = [
    ["--speculative", "model", "--draft-model", F16_DRAFT, "--draft-k", "4"],
    ["--nar", "lookahead", "--window", "5", "--ngram", "3"],
    ["--nar", "fixed", "--speculative", "layerskip", "--draft-layers", "2"],
  ];
  for (const flags of runs) {
    const r = await cli([
      "--json",
      "--temperature",
      "0",
      "--prompt",
      g.prompt,
      "--max-tokens",
      String(g.steps + 1 - g.n_prompt_tokens),
      ...flags,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.deepEqual(json.tokens, g.tokens, flags.join(" "));
    for (const key of ["drafted_tokens", "accepted_tokens", "target_passes"]) {
      assert.equal(typeof json.stats[key], "number", `${flags}: ${key}`);
    }
    assert.ok(json.stats.target_passes < json.stats.generated_tokens + 1);
  }
});

Deno.test("cli: text mode prints the speculation counters on stderr", async () => {
  const r = await cli([
    "--temperature",
    "0",
    "--max-tokens",
    "20",
    "--speculative",
    "ngram",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /drafted_tokens \d+, accepted_tokens \d+/);
  assert.match(r.stderr, /target_passes \d+/);
});

Deno.test("cli: bad speculative flags end in one line", async () => {
  const cases: [string[], RegExp][] = [
    [["--draft-k", "3"], /--draft-k needs --speculative or --nar/],
    [
      ["--speculative", "tree"],
      /unknown drafter "tree"; use one of model, q8, layerskip, ngram, multi/,
    ],
    [["--speculative", "model"], /needs a draft model \(--draft-model PATH\)/],
    [
      ["--nar", "jacobi", "--draft-k", "40"],
      /--draft-k must be an integer from 1 to 32/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 2, args.join(" "));
    assert.equal(r.stdout, "");
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});
