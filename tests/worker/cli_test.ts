/**
 * `generate --threads N` as a user runs it: the same tokens as one thread,
 * on a model wide enough that the pool really splits its products, and a
 * one-line refusal of a bad thread count.
 */
import assert from "node:assert/strict";
import { writeLlama2c } from "../../src/formats/llama2c.ts";
import {
  tinyModel,
  tinyVocabulary,
  tokenizerBin,
} from "../formats/fixtures.ts";

const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

async function cli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("cli: generate --threads 2 and 3 give one thread's tokens", async () => {
  // dim 256: every product has at least 256 × 256 multiply-adds, past the
  // pool's default threshold for splitting.
  const dir = await Deno.makeTempDir({ prefix: "seer-threads-" });
  try {
    const model = `${dir}/wide.bin`, tok = `${dir}/tok.bin`;
    await Deno.writeFile(
      model,
      writeLlama2c(
        tinyModel({
          dim: 256,
          hiddenDim: 512,
          nHeads: 8,
          nKvHeads: 4,
          vocabSize: 512,
          seqLen: 64,
        }),
      ),
    );
    await Deno.writeFile(tok, tokenizerBin(tinyVocabulary(512)));
    const base = [
      "generate",
      "--json",
      "--model",
      model,
      "--tokenizer",
      tok,
      "--prompt",
      "abc",
      "--max-tokens",
      "40",
    ];
    const one = await cli([...base, "--temperature", "0"]);
    assert.equal(one.code, 0, one.stderr);
    const expected = JSON.parse(one.stdout).tokens;
    assert.ok(expected.length > 20, "the run generated tokens");
    for (const threads of ["2", "3"]) {
      const r = await cli([
        ...base,
        "--temperature",
        "0",
        "--threads",
        threads,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        JSON.parse(r.stdout).tokens,
        expected,
        `--threads ${threads}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: a bad --threads is one line naming the valid range", async () => {
  const r = await cli(["generate", "--threads", "0"]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /--threads must be an integer from 1 to 64/);
});
