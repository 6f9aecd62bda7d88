/**
 * The edge bundle as it would be deployed: `scripts/bundle.ts` output, its
 * two files copied alone to an empty folder, started by a fresh
 * `deno serve` without a config and without permissions beyond serving
 * (so no file system: the model must be inside), answering a completion
 * with the CLI's greedy text, within 128 MB of resident memory.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;
const PROMPT = "Once upon a time";
const MAX_TOKENS = 60;

async function run(args: string[], cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(out.code, 0, `deno ${args.join(" ")}:\n${text(out.stderr)}`);
  return text(out.stdout);
}

/** Reads the child's stderr until `deno serve` says where it listens. */
async function listening(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`deno serve did not start in 30 s:\n${seen}`)),
      30_000,
    );
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`deno serve exited:\n${seen}`);
      seen += value;
      const m = /Listening on (http:\/\/[^/\s]+)/.exec(seen);
      if (m) {
        // Keep draining so the child never blocks on a full pipe.
        (async () => {
          while (!(await reader.read()).done);
        })();
        return m[1].replace("0.0.0.0", "127.0.0.1");
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("edge: the bundle alone in an empty folder serves the CLI's greedy text", async () => {
  const built = await Deno.makeTempDir({ prefix: "seer-bundle-" });
  const deploy = await Deno.makeTempDir({ prefix: "seer-edge-" });
  let child: Deno.ChildProcess | undefined;
  try {
    await run(["run", "-A", "scripts/bundle.ts", "--out", built]);
    const files = [...Deno.readDirSync(built)].map((e) => e.name).sort();
    assert.deepEqual(files, ["seer.js", "seer.wasm"]);
    for (const f of files) {
      await Deno.copyFile(`${built}/${f}`, `${deploy}/${f}`);
    }

    const cli = JSON.parse(
      await run([
        "run",
        "-A",
        "src/cli.ts",
        "generate",
        "--json",
        "--temperature",
        "0",
        "--prompt",
        PROMPT,
        "--max-tokens",
        String(MAX_TOKENS),
      ]),
    );

    child = new Deno.Command(Deno.execPath(), {
      args: ["serve", "--no-config", "--no-lock", "--port", "0", "seer.js"],
      cwd: deploy,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const base = await listening(child);
    const res = await fetch(`${base}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        prompt: PROMPT,
        max_tokens: MAX_TOKENS,
        temperature: 0,
      }),
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.model, "stories260K");
    assert.equal(body.choices[0].text, cli.text);
    assert.ok(cli.text.length > 100, "the CLI generated a story");

    // Resident memory of the whole process (runtime included) after the
    // model is loaded and has generated.
    const status = await Deno.readTextFile(`/proc/${child.pid}/status`);
    const rssKiB = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]);
    assert.ok(rssKiB < 128 * 1024, `resident memory ${rssKiB} KiB ≥ 128 MiB`);
  } finally {
    if (child) {
      child.kill("SIGTERM");
      await child.status;
    }
    await Deno.remove(built, { recursive: true });
    await Deno.remove(deploy, { recursive: true });
  }
});
