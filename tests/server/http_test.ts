/**
 * The real server on a loopback port, spoken to over HTTP: the official
 * `openai` client (whole and streamed), raw fetch, the CLI's greedy output
 * as the reference, and /metrics counters moving by exactly what was done.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Engine } from "../../src/engine.ts";
import { renderChat } from "../../src/server/chat.ts";
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
const CHAT_STOP = ["\nUser:", "\nSystem:"];

function client(url: string) {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey: "unused", maxRetries: 0 });
}

/** `deno task cli generate --temperature 0 --json` for one prompt. */
async function cliGreedy(prompt: string, maxTokens: number) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../src/cli.ts", import.meta.url).pathname,
      "generate",
      "--prompt",
      prompt,
      "--temperature",
      "0",
      "--max-tokens",
      String(maxTokens),
      "--json",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test("greedy completions equal the CLI's, through the openai client and raw fetch", async () => {
  const s = await serve(engine, { slots: 2 });
  try {
    const prompts = ["Once upon a time", "The little dog"];
    const refs = await Promise.all(prompts.map((p) => cliGreedy(p, 32)));
    const openai = client(s.url);
    for (const [i, prompt] of prompts.entries()) {
      const ref = refs[i];
      const whole = await openai.completions.create({
        model: "stories260K",
        prompt,
        max_tokens: 32,
        temperature: 0,
      });
      assert.equal(whole.choices[0].text, ref.text);
      assert.equal(whole.choices[0].finish_reason, "length");
      assert.equal(whole.usage?.prompt_tokens, ref.n_prompt_tokens);
      assert.equal(whole.usage?.completion_tokens, ref.stats.generated_tokens);

      const stream = await openai.completions.create({
        model: "stories260K",
        prompt,
        max_tokens: 32,
        temperature: 0,
        stream: true,
      });
      let text = "";
      let finish: string | null = null;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(text, ref.text);
      assert.equal(finish, "length");

      const raw = await post(`${s.url}/v1/completions`, {
        prompt,
        max_tokens: 32,
        temperature: 0,
      });
      assert.equal(
        raw.headers.get("content-type"),
        "application/json; charset=utf-8",
      );
      assert.equal((await raw.json()).choices[0].text, ref.text);
    }
  } finally {
    await s.close();
  }
});

Deno.test("chat completions, whole and streamed, follow the documented template", async () => {
  const s = await serve(engine, { slots: 2 });
  try {
    const messages = [
      { role: "system" as const, content: "You tell stories." },
      { role: "user" as const, content: "Tell me about a cat." },
    ];
    const ref = greedy(engine, renderChat(messages), 40, CHAT_STOP);
    const openai = client(s.url);
    const whole = await openai.chat.completions.create({
      model: "stories260K",
      messages,
      max_tokens: 40,
      temperature: 0,
    });
    assert.equal(whole.object, "chat.completion");
    assert.equal(whole.choices[0].message.role, "assistant");
    assert.equal(whole.choices[0].message.content, ref.text);
    assert.equal(
      whole.usage?.total_tokens,
      ref.n_prompt_tokens + ref.stats.generated_tokens,
    );

    const stream = await openai.chat.completions.create({
      model: "stories260K",
      messages,
      max_tokens: 40,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    const ids = new Set<string>();
    for await (const chunk of stream) {
      ids.add(chunk.id);
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.choices.length === 0) usage = chunk.usage;
    }
    assert.equal(ids.size, 1);
    assert.equal(role, "assistant");
    assert.equal(text, ref.text);
    assert.equal(usage?.completion_tokens, ref.stats.generated_tokens);
  } finally {
    await s.close();
  }
});

Deno.test("the SSE body is OpenAI's chunk format ending with [DONE]", async () => {
  const s = await serve(engine, { slots: 1 });
  try {
    const prompt = "Once upon a time";
    const ref = greedy(engine, prompt, 40, ["Lily"]);
    assert.equal(
      ref.finish_reason,
      "stop",
      "the reference run must hit the stop string",
    );
    const res = await post(`${s.url}/v1/completions`, {
      prompt,
      max_tokens: 40,
      temperature: 0,
      stop: "Lily",
      stream: true,
    });
    assert.equal(
      res.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    const data = sseData(await res.text());
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const last = chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, "stop");
    assert.equal(last.seer.finish_reason, "stop");
    assert.deepEqual(last.usage, {
      prompt_tokens: ref.n_prompt_tokens,
      completion_tokens: ref.stats.generated_tokens,
      total_tokens: ref.n_prompt_tokens + ref.stats.generated_tokens,
    });
    for (const c of chunks.slice(0, -1)) {
      assert.equal(c.object, "text_completion");
      assert.equal(c.choices[0].finish_reason, null);
      assert.ok(c.choices[0].text.length > 0, "no empty text chunks");
    }
    assert.equal(chunks.map((c) => c.choices[0].text).join(""), ref.text);
    assert.ok(!ref.text.includes("Lily"));
  } finally {
    await s.close();
  }
});

Deno.test("/metrics counters move by exactly the requests and tokens served", async () => {
  const s = await serve(engine, { slots: 2 });
  try {
    const before = await scrape(s.url);
    const a = await (await post(`${s.url}/v1/completions`, {
      prompt: "Once upon a time",
      max_tokens: 24,
      temperature: 0,
    })).json();
    const b = sseData(
      await (await post(`${s.url}/v1/completions`, {
        prompt: "The little dog",
        max_tokens: 10,
        temperature: 0,
        stream: true,
      })).text(),
    );
    const bLast = JSON.parse(b.at(-2)!);
    await assertError(
      await post(`${s.url}/v1/completions`, { prompt: 1 }),
      400,
    );
    await assertError(await fetch(`${s.url}/nope`), 404);
    const after = await scrape(s.url);

    const delta = (name: string, labels = "") =>
      sample(after, name, labels) - sample(before, name, labels);
    assert.equal(
      delta("seer_http_requests_total", 'route="/v1/completions",status="200"'),
      2,
    );
    assert.equal(
      delta("seer_http_requests_total", 'route="/v1/completions",status="400"'),
      1,
    );
    assert.equal(
      delta("seer_http_requests_total", 'route="other",status="404"'),
      1,
    );
    assert.equal(
      delta("seer_http_requests_total", 'route="/metrics",status="200"'),
      1,
    );
    assert.equal(
      delta("seer_prompt_tokens_total"),
      a.usage.prompt_tokens + bLast.usage.prompt_tokens,
    );
    assert.equal(delta("seer_generated_tokens_total"), 24 + 10);
    assert.equal(delta("seer_generations_total", 'finish_reason="length"'), 2);
    assert.equal(
      delta("seer_drafted_tokens_total"),
      0,
      "plain decoding drafts nothing",
    );
    assert.equal(delta("seer_time_to_first_token_seconds_count"), 2);
    // Latencies are between consecutive tokens: n - 1 per request.
    assert.equal(delta("seer_token_latency_seconds_count"), 23 + 9);
    assert.equal(sample(after, "seer_queue_depth"), 0);
    assert.equal(sample(after, "seer_slots_busy"), 0);
    assert.equal(sample(after, "seer_slots_total"), 2);
    assert.match(after, /# TYPE seer_time_to_first_token_seconds histogram/);
    assert.equal(
      sample(after, "seer_token_latency_seconds_bucket", 'le="+Inf"'),
      sample(after, "seer_token_latency_seconds_count"),
    );
  } finally {
    await s.close();
  }
});

Deno.test("drafted and accepted token counters move by what the responses report", async () => {
  const s = await serve(engine, { slots: 2 });
  try {
    const before = await scrape(s.url);
    const bodies = await Promise.all(
      ["Once upon a time", "Lily"].map(async (prompt) =>
        await (await post(`${s.url}/v1/completions`, {
          prompt,
          max_tokens: 40,
          temperature: 0,
          speculative: { drafter: "ngram", k: 4 },
        })).json()
      ),
    );
    const after = await scrape(s.url);
    const delta = (name: string) => sample(after, name) - sample(before, name);
    const sum = (key: string) => bodies.reduce((a, b) => a + b.seer[key], 0);
    assert.ok(
      sum("drafted_tokens") > 0,
      "the n-gram drafter proposed something",
    );
    assert.equal(delta("seer_drafted_tokens_total"), sum("drafted_tokens"));
    assert.equal(delta("seer_accepted_tokens_total"), sum("accepted_tokens"));
    for (const [i, prompt] of ["Once upon a time", "Lily"].entries()) {
      assert.equal(bodies[i].choices[0].text, greedy(engine, prompt, 40).text);
    }
  } finally {
    await s.close();
  }
});

Deno.test("/v1/models lists the model; /health reports slots", async () => {
  const s = await serve(engine, { slots: 3, modelId: "tiny" });
  try {
    const models = await client(s.url).models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["tiny"]);
    const health = await (await fetch(`${s.url}/health`)).json();
    assert.deepEqual(health, {
      status: "ok",
      slots_idle: 3,
      slots_processing: 0,
      queue_depth: 0,
    });
    await assertError(await fetch(`${s.url}/v1/models/other`), 404, "model");
  } finally {
    await s.close();
  }
});

Deno.test("seeded sampling is reproducible and the seed is reported", async () => {
  const s = await serve(engine, { slots: 2 });
  try {
    const body = {
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 1,
      seed: 42,
    };
    const [x, y] = await Promise.all([
      post(`${s.url}/v1/completions`, body).then((r) => r.json()),
      post(`${s.url}/v1/completions`, body).then((r) => r.json()),
    ]);
    assert.equal(x.choices[0].text, y.choices[0].text);
    assert.equal(x.seer.seed, 42);
    const ref = engine.complete({
      prompt: body.prompt,
      maxTokens: 20,
      sampling: { temperature: 1 },
      seed: 42,
    });
    assert.equal(x.choices[0].text, ref.text);
    const unseeded = await (await post(`${s.url}/v1/completions`, {
      ...body,
      seed: undefined,
    }))
      .json();
    assert.ok(Number.isInteger(unseeded.seer.seed));
  } finally {
    await s.close();
  }
});
