/**
 * Concurrency on a real loopback server: 64 simultaneous streams each get
 * their own complete, correct text or a clean 429 (nothing lost, garbled or
 * mixed between streams); a client that disconnects frees its slot at
 * once, queued or running; a deadline ends a generation with what it has.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import {
  assertError,
  greedy,
  post,
  sample,
  scrape,
  serve,
  sseData,
} from "./harness.ts";

const engine = await Engine.load();
const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "Lily",
  "Tom and his",
  "One day",
  "The sun",
  "A bird",
  "Max",
];
const MAX_TOKENS = 24;
/** A prompt whose greedy run fills the whole context: long enough to cut off. */
const LONG = "Tom and his";
/**
 * For the tests that must act while a generation runs: a 2 ms turn after
 * every token (sliceMs 0), so the long run takes over a second whatever
 * the machine's speed.
 */
const slow = () => new Promise<void>((r) => setTimeout(r, 2));

async function health(url: string) {
  return await (await fetch(`${url}/health`)).json();
}

async function until(what: string, ok: () => Promise<boolean>, ms = 3000) {
  const t0 = performance.now();
  while (!(await ok())) {
    if (performance.now() - t0 > ms) {
      throw new Error(`timed out waiting until ${what}`);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return performance.now() - t0;
}

Deno.test("64 concurrent streams: each complete and its own, or a clean 429", async () => {
  const SLOTS = 4, QUEUE = 28;
  const s = await serve(engine, { slots: SLOTS, maxQueue: QUEUE });
  try {
    const expected = PROMPTS.map((p) => greedy(engine, p, MAX_TOKENS));
    const before = await scrape(s.url);
    const healthMs: number[] = [];
    let running = true;
    // /health must stay responsive while the slots are busy generating.
    const prober = (async () => {
      while (running) {
        const t0 = performance.now();
        await health(s.url);
        healthMs.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const res = await post(`${s.url}/v1/completions`, {
          prompt: PROMPTS[i % PROMPTS.length],
          max_tokens: MAX_TOKENS,
          temperature: 0,
          stream: true,
        });
        return {
          i,
          status: res.status,
          retry: res.headers.get("retry-after"),
          text: await res.text(),
        };
      }),
    );
    running = false;
    await prober;

    const ids = new Set<string>();
    let completed = 0, refused = 0;
    for (const r of results) {
      if (r.status === 429) {
        refused++;
        assert.equal(r.retry, "1");
        assert.equal(JSON.parse(r.text).error.code, "queue_full");
        continue;
      }
      assert.equal(r.status, 200, r.text);
      completed++;
      const data = sseData(r.text);
      assert.equal(data.at(-1), "[DONE]", `request ${r.i} ended with [DONE]`);
      const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
      const own = new Set(chunks.map((c) => c.id));
      assert.equal(
        own.size,
        1,
        `request ${r.i}: every chunk carries its one id`,
      );
      ids.add(chunks[0].id);
      const ref = expected[r.i % PROMPTS.length];
      assert.equal(
        chunks.map((c) => c.choices[0].text).join(""),
        ref.text,
        `request ${r.i} text`,
      );
      assert.equal(
        chunks.at(-1).usage.completion_tokens,
        ref.stats.generated_tokens,
      );
    }
    assert.equal(ids.size, completed, "no two streams share an id");
    assert.equal(completed + refused, 64);
    assert.ok(
      completed >= SLOTS + QUEUE,
      `the first ${SLOTS + QUEUE} are always admitted (got ${completed})`,
    );

    const after = await scrape(s.url);
    const delta = (status: number) =>
      sample(
        after,
        "seer_http_requests_total",
        `route="/v1/completions",status="${status}"`,
      ) -
      sample(
        before,
        "seer_http_requests_total",
        `route="/v1/completions",status="${status}"`,
      );
    assert.equal(delta(200), completed);
    assert.equal(delta(429), refused);
    assert.equal(sample(after, "seer_slots_busy"), 0);
    assert.equal(sample(after, "seer_queue_depth"), 0);
    healthMs.sort((a, b) => a - b);
    assert.ok(healthMs.length > 0);
    assert.ok(
      healthMs[healthMs.length - 1] < 1000,
      `health answered within 1 s under load (max ${healthMs.at(-1)} ms)`,
    );
  } finally {
    await s.close();
  }
});

Deno.test("a client that disconnects mid-stream frees its slot at once", async () => {
  const s = await serve(engine, { slots: 1, turn: slow, sliceMs: 0 });
  try {
    const ref = greedy(engine, LONG, 512);
    assert.equal(
      ref.finish_reason,
      "context",
      "the reference run must not end by itself",
    );
    const before = await scrape(s.url);
    const ac = new AbortController();
    const res = await post(`${s.url}/v1/completions`, {
      prompt: LONG,
      max_tokens: 512,
      temperature: 0,
      stream: true,
    }, { signal: ac.signal });
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^data: /);
    ac.abort();
    const freedMs = await until(
      "the slot is free",
      async () => (await health(s.url)).slots_processing === 0,
    );

    // The next request gets the slot and is served correctly.
    const next = await (await post(`${s.url}/v1/completions`, {
      prompt: "Lily",
      max_tokens: 8,
      temperature: 0,
    }))
      .json();
    assert.equal(next.choices[0].text, greedy(engine, "Lily", 8).text);

    const after = await scrape(s.url);
    const d = (name: string, labels = "") =>
      sample(after, name, labels) - sample(before, name, labels);
    assert.equal(d("seer_generations_total", 'finish_reason="abort"'), 1);
    const cutAt = d("seer_generated_tokens_total") - 8;
    assert.ok(
      cutAt >= 1 && cutAt < ref.stats.generated_tokens,
      `stopped after ${cutAt} of ${ref.stats.generated_tokens} tokens`,
    );
    assert.ok(freedMs < 1000, `freed in ${freedMs} ms`);
  } finally {
    await s.close();
  }
});

Deno.test("a client that leaves while queued gives up its place", async () => {
  const s = await serve(engine, {
    slots: 1,
    maxQueue: 4,
    turn: slow,
    sliceMs: 0,
  });
  try {
    const holder = new AbortController();
    const running = await post(`${s.url}/v1/completions`, {
      prompt: LONG,
      max_tokens: 512,
      temperature: 0,
      stream: true,
    }, {
      signal: holder.signal,
    });
    await running.body!.getReader().read();
    const waiter = new AbortController();
    const queued = post(`${s.url}/v1/completions`, {
      prompt: "Lily",
      max_tokens: 4,
    }, { signal: waiter.signal })
      .catch((e) => e);
    await until(
      "the request is queued",
      async () => (await health(s.url)).queue_depth === 1,
    );
    waiter.abort();
    assert.equal((await queued).name, "AbortError");
    await until(
      "the queue is empty",
      async () => (await health(s.url)).queue_depth === 0,
    );
    holder.abort();
    await until(
      "the slot is free",
      async () => (await health(s.url)).slots_processing === 0,
    );
  } finally {
    await s.close();
  }
});

Deno.test("the per-request deadline ends a generation with what it has", async () => {
  const s = await serve(engine, { slots: 1, timeoutMs: 40 });
  try {
    const res = await post(`${s.url}/v1/completions`, {
      prompt: LONG,
      max_tokens: 512,
      temperature: 0,
    });
    const body = await res.json();
    assert.equal(res.status, 200);
    assert.equal(body.seer.finish_reason, "deadline");
    assert.equal(body.choices[0].finish_reason, "length");
    const n = body.usage.completion_tokens;
    assert.ok(n < 508, `cut short at ${n} tokens`);
    assert.equal(
      body.choices[0].text,
      greedy(engine, LONG, n).text,
      "what it has is the greedy prefix",
    );
    const after = await scrape(s.url);
    assert.equal(
      sample(after, "seer_generations_total", 'finish_reason="deadline"'),
      1,
    );
  } finally {
    await s.close();
  }
});

Deno.test("a full queue answers 429 with Retry-After at once", async () => {
  const s = await serve(engine, {
    slots: 1,
    maxQueue: 0,
    turn: slow,
    sliceMs: 0,
  });
  try {
    const holder = new AbortController();
    const running = await post(`${s.url}/v1/completions`, {
      prompt: LONG,
      max_tokens: 512,
      temperature: 0,
      stream: true,
    }, {
      signal: holder.signal,
    });
    await running.body!.getReader().read();
    const refused = await post(`${s.url}/v1/completions`, {
      prompt: "Lily",
      max_tokens: 4,
    });
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.equal((await assertError(refused, 429)).type, "rate_limit_error");
    holder.abort();
    await until(
      "the slot is free",
      async () => (await health(s.url)).slots_processing === 0,
    );
  } finally {
    await s.close();
  }
});
