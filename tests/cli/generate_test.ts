/**
 * The CLI as a user runs it: golden greedy runs through `generate --json`,
 * and bad input that ends in a one-line message, never a stack trace.
 */
import assert from "node:assert/strict";
import { runCli } from "./run.ts";
import { assertTopLogits, GOLDEN } from "../golden.ts";

const MODELS = new URL("../../../shared/models/", import.meta.url).pathname;

const cli = runCli;

Deno.test("cli: generate --json reproduces the golden runs", async () => {
  for (const g of GOLDEN) {
    const r = await cli([
      "generate",
      "--json",
      "--temperature",
      "0",
      "--prompt",
      g.prompt,
      "--max-tokens",
      String(g.steps + 1 - g.n_prompt_tokens),
      "--top-logits",
      "5",
      "--top-logits-steps",
      "8",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout); // exactly one JSON object on stdout
    assert.deepEqual(json.tokens, g.tokens);
    assert.equal(json.n_prompt_tokens, g.n_prompt_tokens);
    assert.equal(g.prompt + json.text + "\n", g.text);
    for (
      const key of [
        "prompt_tokens",
        "generated_tokens",
        "prompt_tokens_per_second",
        "tokens_per_second",
      ]
    ) {
      assert.equal(typeof json.stats[key], "number", key);
    }
    assertTopLogits(json.top_logits, g, 1e-4, `cli "${g.prompt}"`);
  }
});

Deno.test("cli: text mode streams the story and prints stats on stderr", async () => {
  const g = GOLDEN[1];
  const r = await cli([
    "generate",
    "--temperature",
    "0",
    "--prompt",
    g.prompt,
    "--max-tokens",
    String(g.steps + 1 - g.n_prompt_tokens),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, g.text);
  assert.match(r.stderr, /tok\/s/);
});

Deno.test("cli: bad input is one clear message, no stack trace", async () => {
  const tmp = await Deno.makeTempDir();
  const truncated = `${tmp}/truncated.bin`;
  const bytes = await Deno.readFile(`${MODELS}stories260K.bin`);
  await Deno.writeFile(truncated, bytes.subarray(0, 5000));
  const cases: [string[], RegExp][] = [
    [["generate", "--temperature=-1"], /--temperature must be/],
    [["generate", "--max-tokens", "ten"], /--max-tokens must be an integer/],
    [["generate", "--top-p", "2"], /--top-p must be/],
    [["generate", "--quant", "q4"], /--quant must be q8_0/],
    [["generate", "--bogus"], /Unknown option '--bogus'/],
    [["generate", "--model", `${tmp}/missing.bin`], /missing\.bin/],
    [
      ["generate", "--model", truncated, "--tokenizer", `${MODELS}tok512.bin`],
      /truncated\.bin/,
    ],
    [
      [
        "generate",
        "--model",
        `${MODELS}stories260K.bin`,
        "--tokenizer",
        `${MODELS}tokenizer.bin`,
      ],
      /tokenizer/i,
    ],
    [["generate", "--prompt", "Once upon a time ".repeat(200)], /context/],
    [["nonsense"], /unknown command/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args);
    assert.notEqual(r.code, 0, `${args.join(" ")} should fail`);
    assert.match(r.stderr, message, `${args.join(" ")}: ${r.stderr}`);
    assert.doesNotMatch(
      r.stderr,
      /^\s+at /m,
      `stack trace for ${args.join(" ")}`,
    );
  }
  await Deno.remove(tmp, { recursive: true });
});
