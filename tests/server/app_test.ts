/**
 * Routes through `app.request()` (no socket): validation names the field
 * at fault, routing gives 404/405, the API key is enforced, /health waits
 * for the model, and answers equal the engine's own greedy output.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { createApp } from "../../src/server/app.ts";
import { renderChat } from "../../src/server/chat.ts";
import { assertError, greedy } from "./harness.ts";

const engine = await Engine.load();
const seer = createApp(engine, { slots: 2, maxQueue: 4 });
await seer.ready;
const CTX = engine.model.contextLength;
const VOCAB = engine.tokenizer.vocab.tokens.length;

function call(path: string, body: unknown, init: RequestInit = {}) {
  return seer.app.request(path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
}

const base = { prompt: "Once upon a time", max_tokens: 4, temperature: 0 };
const chat = {
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 4,
  temperature: 0,
};

// [what, path, body, expected param]: each body has exactly one defect.
const INVALID: [string, string, unknown, string | null][] = [
  ["prompt missing", "/v1/completions", { max_tokens: 4 }, "prompt"],
  ["prompt a number", "/v1/completions", { prompt: 7 }, "prompt"],
  ["prompt empty array", "/v1/completions", { prompt: [] }, "prompt"],
  ["two prompts", "/v1/completions", { prompt: ["a", "b"] }, "prompt"],
  ["token id too big", "/v1/completions", { prompt: [1, VOCAB] }, "prompt"],
  ["token id fractional", "/v1/completions", { prompt: [1, 2.5] }, "prompt"],
  ["token id negative", "/v1/completions", { prompt: [-1] }, "prompt"],
  ["too many token ids", "/v1/completions", {
    prompt: new Array(CTX + 1).fill(1),
  }, "prompt"],
  [
    "lone surrogate prompt",
    "/v1/completions",
    { prompt: "a\ud800b" },
    "prompt",
  ],
  [
    "max_tokens a string",
    "/v1/completions",
    { ...base, max_tokens: "4" },
    "max_tokens",
  ],
  [
    "max_tokens negative",
    "/v1/completions",
    { ...base, max_tokens: -1 },
    "max_tokens",
  ],
  [
    "max_tokens fractional",
    "/v1/completions",
    { ...base, max_tokens: 1.5 },
    "max_tokens",
  ],
  ["max_tokens beyond context", "/v1/completions", {
    ...base,
    max_tokens: CTX + 1,
  }, "max_tokens"],
  [
    "temperature too high",
    "/v1/completions",
    { ...base, temperature: 2.5 },
    "temperature",
  ],
  [
    "temperature negative",
    "/v1/completions",
    { ...base, temperature: -0.1 },
    "temperature",
  ],
  [
    "temperature a bool",
    "/v1/completions",
    { ...base, temperature: true },
    "temperature",
  ],
  ["top_p zero", "/v1/completions", { ...base, top_p: 0 }, "top_p"],
  ["top_p above 1", "/v1/completions", { ...base, top_p: 1.01 }, "top_p"],
  ["top_k negative", "/v1/completions", { ...base, top_k: -1 }, "top_k"],
  ["top_k huge", "/v1/completions", { ...base, top_k: 1e12 }, "top_k"],
  ["min_p one", "/v1/completions", { ...base, min_p: 1 }, "min_p"],
  [
    "repeat_penalty zero",
    "/v1/completions",
    { ...base, repeat_penalty: 0 },
    "repeat_penalty",
  ],
  ["seed negative", "/v1/completions", { ...base, seed: -5 }, "seed"],
  ["seed beyond 2^53", "/v1/completions", { ...base, seed: 2 ** 60 }, "seed"],
  ["stop a number", "/v1/completions", { ...base, stop: 5 }, "stop"],
  ["stop empty string", "/v1/completions", { ...base, stop: [""] }, "stop"],
  ["too many stops", "/v1/completions", {
    ...base,
    stop: new Array(17).fill("x"),
  }, "stop"],
  [
    "stop lone surrogate",
    "/v1/completions",
    { ...base, stop: ["\udc00"] },
    "stop",
  ],
  ["stream a string", "/v1/completions", { ...base, stream: "true" }, "stream"],
  ["n = 2", "/v1/completions", { ...base, n: 2 }, "n"],
  ["echo", "/v1/completions", { ...base, echo: true }, "echo"],
  ["logprobs", "/v1/completions", { ...base, logprobs: 3 }, "logprobs"],
  [
    "presence_penalty",
    "/v1/completions",
    { ...base, presence_penalty: 0.5 },
    "presence_penalty",
  ],
  [
    "logit_bias",
    "/v1/completions",
    { ...base, logit_bias: { "1": 5 } },
    "logit_bias",
  ],
  ["model a number", "/v1/completions", { ...base, model: 3 }, "model"],
  [
    "speculative a string",
    "/v1/completions",
    { ...base, speculative: "ngram" },
    "speculative",
  ],
  ["unknown drafter", "/v1/completions", {
    ...base,
    speculative: { drafter: "x" },
  }, "speculative.drafter"],
  ["draft k zero", "/v1/completions", {
    ...base,
    speculative: { drafter: "ngram", k: 0 },
  }, "speculative.k"],
  ["speculative extra field", "/v1/completions", {
    ...base,
    speculative: { drafter: "ngram", depth: 2 },
  }, "speculative.depth"],
  ["messages missing", "/v1/chat/completions", { max_tokens: 4 }, "messages"],
  ["messages empty", "/v1/chat/completions", { messages: [] }, "messages"],
  ["bad role", "/v1/chat/completions", {
    messages: [{ role: "robot", content: "x" }],
  }, "messages"],
  ["content a number", "/v1/chat/completions", {
    messages: [{ role: "user", content: 1 }],
  }, "messages"],
  ["image content", "/v1/chat/completions", {
    messages: [{
      role: "user",
      content: [{ type: "image_url", image_url: { url: "x" } }],
    }],
  }, "messages"],
  [
    "tools",
    "/v1/chat/completions",
    { ...chat, tools: [{ type: "function" }] },
    "tools",
  ],
  ["json output", "/v1/chat/completions", {
    ...chat,
    response_format: { type: "json_object" },
  }, "response_format"],
  [
    "chat logprobs",
    "/v1/chat/completions",
    { ...chat, logprobs: true },
    "logprobs",
  ],
  ["max_completion_tokens negative", "/v1/chat/completions", {
    ...chat,
    max_tokens: undefined,
    max_completion_tokens: -3,
  }, "max_completion_tokens"],
];

Deno.test("each invalid field is refused with 400 naming it", async () => {
  for (const [what, path, body, param] of INVALID) {
    const err = await assertError(await call(path, body), 400, param);
    assert.equal(err.type, "invalid_request_error", what);
    if (param) {
      assert.ok(
        err.message.includes(param.split(".").pop()!),
        `${what}: ${err.message}`,
      );
    }
  }
});

Deno.test("a prompt longer than the context is 400 context_length_exceeded", async () => {
  const long = "the cat sat on the mat. ".repeat(200);
  assert.ok(engine.encode(long).length > CTX);
  const err = await assertError(
    await call("/v1/completions", { prompt: long }),
    400,
    "prompt",
  );
  assert.equal(err.code, "context_length_exceeded");
  // Far beyond any tokenization: refused by the byte bound, same answer.
  const huge = "x".repeat(200_000);
  const err2 = await assertError(
    await call("/v1/completions", { prompt: huge }),
    400,
    "prompt",
  );
  assert.equal(err2.code, "context_length_exceeded");
});

Deno.test("a chat longer than the context names messages", async () => {
  const content = "the cat sat on the mat. ".repeat(200);
  const err = await assertError(
    await call("/v1/chat/completions", {
      messages: [{ role: "user", content }],
    }),
    400,
    "messages",
  );
  assert.equal(err.code, "context_length_exceeded");
});

Deno.test("bodies that are not a JSON object are 400", async () => {
  for (
    const body of ["", "{", "[1]", "null", "42", '"x"', "{'a':1}", '{"a":1,}']
  ) {
    const err = await assertError(
      await call("/v1/completions", body),
      400,
      null,
    );
    assert.equal(err.code, "invalid_json", body);
  }
  const bad = new Uint8Array([
    0x7b,
    0x22,
    0x70,
    0x22,
    0x3a,
    0x22,
    0xff,
    0x22,
    0x7d,
  ]); // {"p":"\xff"}
  const err = await assertError(
    await seer.app.request("/v1/completions", { method: "POST", body: bad }),
    400,
    null,
  );
  assert.equal(err.code, "invalid_encoding");
});

Deno.test("answers equal the engine's greedy output", async () => {
  const res = await call("/v1/completions", { ...base, max_tokens: 24 });
  assert.equal(res.status, 200);
  const body = await res.json();
  const ref = greedy(engine, base.prompt, 24);
  assert.equal(body.choices[0].text, ref.text);
  assert.equal(body.object, "text_completion");
  assert.equal(body.choices[0].finish_reason, "length");
  assert.deepEqual(body.usage, {
    prompt_tokens: ref.n_prompt_tokens,
    completion_tokens: 24,
    total_tokens: ref.n_prompt_tokens + 24,
  });
  assert.equal(body.seer.finish_reason, "length");

  const c =
    await (await call("/v1/chat/completions", { ...chat, max_tokens: 12 }))
      .json();
  const chatRef = greedy(
    engine,
    renderChat([{ role: "user", content: "hi" }]),
    12,
    [
      "\nUser:",
      "\nSystem:",
    ],
  );
  assert.equal(c.object, "chat.completion");
  assert.deepEqual(c.choices[0].message, {
    role: "assistant",
    content: chatRef.text,
  });
});

Deno.test("token-id prompts, unknown fields and null values are accepted", async () => {
  const ids = engine.encode("Once upon a time");
  const a = await (await call("/v1/completions", {
    prompt: ids,
    max_tokens: 8,
    temperature: 0,
  }))
    .json();
  assert.equal(a.choices[0].text, greedy(engine, ids, 8).text);
  const b = await call("/v1/completions", {
    ...base,
    user: "someone",
    metadata: { x: 1 },
    top_p: null,
    stop: null,
    n: 1,
    logprobs: null,
    speculative: null,
  });
  assert.equal(b.status, 200, await b.clone().text());
  await b.body?.cancel();
});

Deno.test("routing: 404 for unknown paths, 405 with Allow for wrong methods", async () => {
  await assertError(await seer.app.request("/v2/anything"), 404, null);
  const res = await seer.app.request("/v1/completions");
  assert.equal(res.headers.get("allow"), "POST");
  await assertError(res, 405, null);
  await assertError(
    await seer.app.request("/health", { method: "POST" }),
    405,
    null,
  );
  assert.equal(
    (await seer.app.request("/health", { method: "HEAD" })).status,
    200,
  );
});

Deno.test("the API key is required when set, compared in full", async () => {
  const guarded = createApp(engine, { apiKey: "s3cret", slots: 1 });
  await guarded.ready;
  const req = (auth?: string) =>
    guarded.app.request(
      "/v1/models",
      auth ? { headers: { authorization: auth } } : {},
    );
  const missing = await req();
  assert.equal(missing.headers.get("www-authenticate"), "Bearer");
  assert.equal((await assertError(missing, 401)).type, "authentication_error");
  await assertError(await req("Bearer s3cre"), 401);
  await assertError(await req("Bearer s3cret2"), 401);
  await assertError(await req("Basic s3cret"), 401);
  const ok = await req("Bearer s3cret");
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).data[0].id, "stories260K");
  // Health stays open for load balancers; metrics are guarded.
  assert.equal((await guarded.app.request("/health")).status, 200);
  await assertError(await guarded.app.request("/metrics"), 401);
  guarded.dispose();
});

Deno.test("/health is 503 while the model loads, 200 after; requests wait with 503", async () => {
  let resolve!: (e: Engine) => void;
  const later = createApp(new Promise<Engine>((r) => (resolve = r)), {
    slots: 1,
  });
  const loading = await later.app.request("/health");
  assert.equal(loading.status, 503);
  assert.equal((await loading.json()).status, "loading");
  const early = await later.app.request("/v1/completions", {
    method: "POST",
    body: "{}",
  });
  assert.equal(early.headers.get("retry-after"), "1");
  assert.equal((await assertError(early, 503)).code, "model_loading");
  resolve(engine);
  await later.ready;
  const ready = await later.app.request("/health");
  assert.equal(ready.status, 200);
  assert.equal((await ready.json()).status, "ok");
  later.close();
  assert.equal((await later.app.request("/health")).status, 503);
  later.dispose();
});

Deno.test("speculative requests decode exactly like plain greedy and report drafts", async () => {
  const ref = greedy(engine, base.prompt, 40);
  for (
    const speculative of [{ drafter: "ngram", k: 4 }, {
      drafter: "layerskip",
      k: 2,
    }, { drafter: "multi" }]
  ) {
    const res = await call("/v1/completions", {
      ...base,
      max_tokens: 40,
      speculative,
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.choices[0].text, ref.text, speculative.drafter);
    assert.equal(typeof body.seer.drafted_tokens, "number");
    assert.ok(body.seer.accepted_tokens <= body.seer.drafted_tokens);
  }
  // Drafters that load weights are offered only when the server loaded them.
  const err = await assertError(
    await call("/v1/completions", { ...base, speculative: { drafter: "q8" } }),
    400,
    "speculative.drafter",
  );
  assert.match(err.message, /--speculative q8/);
});

Deno.test("a server started with a weight-loading drafter uses it by default", async () => {
  const q8 = createApp(engine, {
    slots: 1,
    speculative: { default: { drafter: "q8", k: 3 } },
  });
  await q8.ready;
  const ask = async (extra: Record<string, unknown>) => {
    const res = await q8.app.request("/v1/completions", {
      method: "POST",
      body: JSON.stringify({ ...base, max_tokens: 30, ...extra }),
    });
    return { status: res.status, body: await res.json() };
  };
  const ref = greedy(engine, base.prompt, 30).text;
  const byDefault = await ask({});
  assert.equal(byDefault.body.choices[0].text, ref);
  assert.ok(byDefault.body.seer.drafted_tokens > 0);
  assert.equal(
    (await ask({ speculative: { drafter: "q8", k: 3 } })).body.choices[0].text,
    ref,
  );
  const plain = await ask({ speculative: null });
  assert.equal(plain.body.choices[0].text, ref);
  assert.equal(plain.body.seer.drafted_tokens, undefined);
  const wrongK = await ask({ speculative: { drafter: "q8", k: 5 } });
  assert.equal(wrongK.status, 400);
  assert.equal(wrongK.body.error.param, "speculative.k");
  q8.dispose();
});

Deno.test("a bad drafter configuration fails the start, not a request", async () => {
  const bad = createApp(engine, {
    speculative: { default: { drafter: "model" } },
  });
  await assert.rejects(bad.ready, /needs a draft model/);
  const health = await bad.app.request("/health");
  assert.equal(health.status, 503);
  assert.equal((await health.json()).status, "error");
});

Deno.test("the chat template renders turns and ends with the assistant's label", () => {
  assert.equal(
    renderChat([
      { role: "system", content: "Be brief." },
      { role: "user", content: " Tell a story. " },
      { role: "assistant", content: "Once." },
      { role: "developer", content: "Shorter." },
    ]),
    "System: Be brief.\nUser: Tell a story.\nAssistant: Once.\nSystem: Shorter.\nAssistant:",
  );
});
