/**
 * `deno task serve` as a process: flags are checked before anything is
 * served, it prints where it listens, warns when open on a non-loopback
 * address, and on SIGTERM lets the running request finish and exits 0.
 */
import assert from "node:assert/strict";
import { post, sseData } from "./harness.ts";

const MAIN = new URL("../../src/server/main.ts", import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdout: "piped",
    stderr: "piped",
    env,
  });
}

interface Server {
  url: string;
  child: Deno.ChildProcess;
  stderr: () => Promise<string>;
}

/** Spawns the server on a free port and waits until /health says ok. */
async function start(
  args: string[],
  env: Record<string, string> = {},
): Promise<Server> {
  const child = run(["--port", "0", ...args], env).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("\n")) {
    const r = await lines.read();
    if (r.done) throw new Error(`the server exited before listening: ${out}`);
    out += r.value;
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done);
  })();
  const url = out.match(/listening on (http:\/\/\S+)/)?.[1];
  assert.ok(url, out);
  const err = child.stderr.pipeThrough(new TextDecoderStream());
  let stderrText = "";
  const stderrDone = (async () => {
    for await (const chunk of err) stderrText += chunk;
  })();
  for (let i = 0; i < 500; i++) {
    const res = await fetch(`${url}/health`).catch(() => undefined);
    const status = res?.status;
    await res?.body?.cancel();
    if (status === 200) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  return { url, child, stderr: async () => (await stderrDone, stderrText) };
}

Deno.test("bad flags exit 2 with a message before serving; --help exits 0", async () => {
  const cases: [string[], RegExp][] = [
    [["--port", "70000"], /--port must be an integer from 0 to 65535/],
    [["--slots", "0"], /--slots must be an integer from 1 to 256/],
    [["--quant", "q4"], /--quant must be q8_0/],
    [
      ["--speculative", "warp"],
      /--speculative must be one of model, q8, layerskip, ngram, multi/,
    ],
    [["--draft-k", "4"], /--draft-k needs --speculative/],
    [["--speculative", "model"], /the "model" drafter needs a draft model/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  await Promise.all(cases.map(async ([args, message]) => {
    const out = await run(args).output();
    assert.equal(out.code, 2, args.join(" "));
    assert.match(new TextDecoder().decode(out.stderr), message);
  }));
  const help = await run(["--help"]).output();
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /usage: deno task serve/);
});

/** Reads a whole SSE body into its data payloads. */
async function drain(res: Response): Promise<string[]> {
  return sseData(await res.text());
}

/**
 * Enough streamed work on one slot that the signal surely lands while
 * some of it runs and the rest waits: `n` requests of `tokens` each.
 */
async function backlog(url: string, n: number, tokens: number) {
  const requests = Array.from(
    { length: n },
    () =>
      post(`${url}/v1/completions`, {
        prompt: "Tom and his",
        max_tokens: tokens,
        temperature: 0,
        stream: true,
      }),
  );
  // A streamed response has its headers once the request is admitted
  // (running or queued): after this, all of them are the server's.
  const [first, ...others] = await Promise.all(requests);
  const reader = first.body!.getReader();
  // The first token is here: generation is under way when this returns.
  let text = new TextDecoder().decode((await reader.read()).value);
  const rest = (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) return sseData(text);
      text += new TextDecoder().decode(r.value);
    }
  })();
  return {
    first: rest,
    others: others.map(drain),
  };
}

Deno.test("SIGTERM: running and queued requests finish, then the process exits 0", async () => {
  const s = await start(["--slots", "1"]);
  const { first, others } = await backlog(s.url, 8, 500);
  s.child.kill("SIGTERM");
  for (const data of [await first, ...(await Promise.all(others))]) {
    assert.equal(data.at(-1), "[DONE]", "every accepted stream completed");
    const last = JSON.parse(data.at(-2)!);
    assert.equal(last.usage.completion_tokens, 500);
    assert.equal(last.seer.finish_reason, "length");
  }
  assert.equal((await s.child.status).code, 0);
  assert.match(await s.stderr(), /SIGTERM: shutting down/);
  // Gone: no one listens any more.
  await assert.rejects(fetch(`${s.url}/health`));
});

Deno.test("SIGINT with no grace cancels running and queued work and exits 0", async () => {
  const s = await start([
    "--slots",
    "1",
    "--shutdown-grace",
    "0",
    "--context",
    "4096",
  ]);
  const { first, others } = await backlog(s.url, 8, 4000);
  s.child.kill("SIGINT");
  const t0 = performance.now();
  let cut = 0;
  for (const data of [await first, ...(await Promise.all(others))]) {
    const last = JSON.parse(
      data.at(-1) === "[DONE]" ? data.at(-2)! : data.at(-1)!,
    );
    if (last.error) {
      assert.equal(last.error.code, "shutting_down");
      cut++;
    } else if (last.seer.finish_reason === "abort") {
      assert.ok(last.usage.completion_tokens < 4000);
      cut++;
    }
  }
  assert.ok(cut >= 1, "the signal cut work short");
  assert.equal((await s.child.status).code, 0);
  assert.ok(performance.now() - t0 < 5000, "no grace period was waited");
});

Deno.test("streamed tokens reach an outside client while generation runs", async () => {
  // Yielding that lets connections in but not response bodies out would
  // deliver every stream in one piece at the end (scheduler.ts).
  const s = await start(["--slots", "1"]);
  try {
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const res = await post(`${s.url}/v1/completions`, {
        prompt: "Tom and his",
        max_tokens: 500,
        temperature: 0,
        stream: true,
      });
      const reader = res.body!.getReader();
      let first = NaN, chunks = 0;
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        chunks++;
        if (Number.isNaN(first)) first = performance.now() - t0;
      }
      const total = performance.now() - t0;
      assert.ok(first < total / 2, `first chunk at ${first} ms of ${total} ms`);
      assert.ok(chunks > 1, "more than one write");
    }
  } finally {
    s.child.kill("SIGTERM");
    await s.child.status;
    await s.stderr();
  }
});

Deno.test("an outside client that disconnects stops its generation early", async () => {
  const s = await start(["--slots", "1", "--context", "2048"]);
  try {
    const full = await (await post(`${s.url}/v1/completions`, {
      prompt: "Tom and his",
      max_tokens: 2000,
      temperature: 0,
    })).json();
    assert.ok(full.usage.completion_tokens > 500, "the uncut run is long");
    const ac = new AbortController();
    const res = await post(`${s.url}/v1/completions`, {
      prompt: "Tom and his",
      max_tokens: 2000,
      temperature: 0,
      stream: true,
    }, { signal: ac.signal });
    await res.body!.getReader().read();
    ac.abort();
    const metric = async (name: string) => {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      return Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? 0);
    };
    const t0 = performance.now();
    while (
      await metric('seer_generations_total{finish_reason="abort"}') !== 1
    ) {
      assert.ok(performance.now() - t0 < 2000, "the abort was seen within 2 s");
      await new Promise((r) => setTimeout(r, 5));
    }
    const cut = await metric("seer_generated_tokens_total") -
      full.usage.completion_tokens;
    // Noticed at the next full turn (≤ 10 ms of compute), far before the end.
    assert.ok(
      cut < full.usage.completion_tokens / 2,
      `stopped after ${cut} of ${full.usage.completion_tokens} tokens`,
    );
  } finally {
    s.child.kill("SIGTERM");
    await s.child.status;
    await s.stderr();
  }
});

Deno.test("open on a non-loopback address warns; SEER_API_KEY guards the API", async () => {
  const s = await start(["--host", "0.0.0.0"]);
  s.child.kill("SIGTERM");
  assert.equal((await s.child.status).code, 0);
  assert.match(await s.stderr(), /warning: no API key and bound to 0\.0\.0\.0/);

  const k = await start(["--host", "0.0.0.0"], { SEER_API_KEY: "k3y" });
  const local = k.url.replace("0.0.0.0", "127.0.0.1");
  assert.equal(
    await post(`${local}/v1/completions`, { prompt: "x", max_tokens: 1 }).then(
      async (r) => (await r.body?.cancel(), r.status),
    ),
    401,
  );
  const ok = await post(`${local}/v1/completions`, {
    prompt: "x",
    max_tokens: 1,
  }, {
    headers: { authorization: "Bearer k3y" },
  });
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  k.child.kill("SIGTERM");
  assert.equal((await k.child.status).code, 0);
  assert.doesNotMatch(await k.stderr(), /warning/);
});
