/**
 * `generate --threads N` and `serve --threads 2` as a user runs them: the
 * same tokens and text as one thread,
 * on a model wide enough that the pool really splits its products, and a
 * one-line refusal of a bad thread count.
 */
import assert from "node:assert/strict";
import { runCli } from "../cli/run.ts";
import { writeLlama2c } from "../../src/formats/llama2c.ts";
import {
  tinyModel,
  tinyVocabulary,
  tokenizerBin,
} from "../formats/fixtures.ts";

const SERVER = new URL("../../src/server/main.ts", import.meta.url).pathname;

const cli = runCli;

/** One greedy completion from `serve --threads 2` on a free port. */
async function serverText(
  model: string,
  tokenizer: string,
  prompt: string,
  maxTokens: number,
): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      SERVER,
      ...["--port", "0", "--threads", "2", "--model", model],
      ...["--tokenizer", tokenizer],
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    let m: RegExpExecArray | null = null;
    while (!m) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server exited:\n${seen}`);
      seen += value;
      m = /listening on (http:\/\/\S+)/.exec(seen);
    }
    // Keep draining so the server never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done);
    })();
    // It listens at once and loads the model after: wait for /health.
    for (let i = 0; i < 300; i++) {
      const health = await fetch(`${m[1]}/health`);
      await health.body?.cancel();
      if (health.status === 200) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const res = await fetch(`${m[1]}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt,
        max_tokens: maxTokens,
        temperature: 0,
      }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    return body.choices[0].text;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

Deno.test("cli and server: --threads 2 and 3 give one thread's tokens", async () => {
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
    // The server with --threads 2 answers with the same text.
    assert.equal(
      await serverText(model, tok, "abc", 40),
      JSON.parse(one.stdout).text,
    );
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
