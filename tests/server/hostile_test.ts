/**
 * Hostile and malformed traffic against the real server: a seeded
 * generator of more than 500 bad requests (broken JSON, wrong types, huge
 * and negative numbers, lone surrogates and invalid UTF-8, wrong routes and
 * methods, oversize bodies) plus slowloris-style partial bodies on raw
 * sockets. Every one must get a 4xx carrying an OpenAI error object, none a
 * 5xx, and the server must answer a normal request correctly afterwards.
 */
import assert from "node:assert/strict";
import { Engine } from "../../src/engine.ts";
import { greedy, post, sample, scrape, serve } from "./harness.ts";
import { testRng } from "../helpers.ts";

const engine = await Engine.load();
const CTX = engine.model.contextLength;
const VOCAB = engine.tokenizer.vocab.tokens.length;
const MAX_BODY = 64 * 1024;
const BODY_TIMEOUT_MS = 300;

interface Case {
  what: string;
  path: string;
  method: string;
  body?: BodyInit;
  headers?: Record<string, string>;
}

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T =>
  xs[Math.floor(r() * xs.length)];

/** Valid requests the mutations start from. */
function validBody(r: Rand, chat: boolean): Record<string, unknown> {
  const base: Record<string, unknown> = {
    max_tokens: 1 + Math.floor(r() * 4),
    temperature: pick(r, [0, 0.7, 1]),
  };
  if (chat) {
    base.messages = [{
      role: "user",
      content: pick(r, ["hi", "Tell a story", "ü🙂"]),
    }];
  } else base.prompt = pick(r, ["Once upon a time", "The dog", "", "日本"]);
  return base;
}

/**
 * For each numeric field, raw JSON values that are out of range or of the
 * wrong type: every one of them must be refused. (Raw text, so values JSON
 * cannot carry through JSON.stringify, like 1e400, are included.)
 */
const BAD_VALUES: Record<string, string[]> = {
  max_tokens: [
    "-1",
    "1.5",
    "1e400",
    "-1e400",
    String(CTX + 1),
    "1e308",
    "18446744073709551616",
    '"4"',
    "true",
    "[4]",
    "{}",
  ],
  temperature: [
    "-0.1",
    "2.0001",
    "1e400",
    "-1e400",
    "1e308",
    '"0.5"',
    "false",
    "[]",
    "{}",
  ],
  top_p: ["0", "-1", "1.5", "1e400", "-1e-300", '"1"', "[]"],
  top_k: ["-1", "0.5", String(VOCAB + 1), "1e12", "1e400", '"5"', "true"],
  min_p: ["-0.01", "1", "7", "1e400", '"0"', "{}"],
  repeat_penalty: ["0", "-1", "10.5", "1e400", '"1"', "[]"],
  seed: [
    "-1",
    "-5e9",
    "0.5",
    "1e300",
    "9007199254740993e3",
    '"7"',
    "true",
    "{}",
  ],
  n: ["2", "0", "-1", "1e400", '"1"'],
  stream: ['"true"', "1", "0", "[]", "{}"],
  stop: [
    "5",
    "[1]",
    '[""]',
    "{}",
    "true",
    JSON.stringify(new Array(17).fill("x")),
    JSON.stringify(["x".repeat(300)]),
  ],
  echo: ["true"],
  logprobs: ["5", '"yes"'],
  speculative: [
    '"ngram"',
    "1",
    "[]",
    '{"drafter":"warp"}',
    '{"drafter":"ngram","k":0}',
    '{"drafter":"ngram","k":1e400}',
    '{"drafter":"ngram","k":-2}',
    '{"drafter":"ngram","k":"4"}',
    '{"k":4}',
  ],
};

const LONE = ["\\ud800", "\\udfff", "a\\ud83d", "\\ude00b", "x\\udbff\\udbff"];
/** Byte sequences that are not UTF-8: lone 0xff, overlong "/", CESU surrogate, truncated 4-byte, 5-byte form. */
const BAD_UTF8 = [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf0, 0x9f], [
  0xf8,
  0x88,
  0x80,
  0x80,
  0x80,
], [0x80]];

function raw(
  body: Record<string, unknown>,
  field: string,
  value: string,
): string {
  const rest = JSON.stringify({ ...body, [field]: undefined });
  return rest === "{}"
    ? `{"${field}":${value}}`
    : `{"${field}":${value},${rest.slice(1)}`;
}

function isObjectJson(text: string): boolean {
  try {
    const v = JSON.parse(text);
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

const GENERATORS: [string, (r: Rand) => Case][] = [
  ["broken JSON", (r) => {
    const chat = r() < 0.5;
    const text = JSON.stringify(validBody(r, chat));
    for (;;) {
      const kind = Math.floor(r() * 3);
      const at = Math.floor(r() * text.length);
      const mutated = kind === 0
        ? text.slice(0, at) // every proper prefix of an object is incomplete
        : kind === 1
        ? text.slice(0, at) +
          pick(r, [
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            '"',
            "'",
            "\\",
            "NaN",
            "//",
            "\u0000",
          ]) + text.slice(at)
        : text.slice(0, at) + text.slice(at + 1 + Math.floor(r() * 3));
      if (!isObjectJson(mutated)) {
        return {
          what: `broken JSON ${JSON.stringify(mutated.slice(0, 60))}`,
          path: chat ? "/v1/chat/completions" : "/v1/completions",
          method: "POST",
          body: mutated,
        };
      }
    }
  }],
  ["bad value", (r) => {
    const field = pick(r, Object.keys(BAD_VALUES));
    const value = pick(r, BAD_VALUES[field]);
    const chat = r() < 0.3 && field !== "echo";
    return {
      what: `${field}: ${value.slice(0, 40)}`,
      path: chat ? "/v1/chat/completions" : "/v1/completions",
      method: "POST",
      body: raw(validBody(r, chat), field, value),
    };
  }],
  ["not an object", (r) => {
    const body = pick(r, [
      "[]",
      "null",
      "42",
      '"prompt"',
      "true",
      "[".repeat(5000) + "]".repeat(5000),
      " ",
      "",
    ]);
    return {
      what: `body ${body.slice(0, 20)}`,
      path: pick(r, ["/v1/completions", "/v1/chat/completions"]),
      method: "POST",
      body,
    };
  }],
  ["lone surrogate", (r) => {
    const s = pick(r, LONE);
    const where = Math.floor(r() * 4);
    const body = where === 0
      ? `{"prompt":"x${s}y","max_tokens":2}`
      : where === 1
      ? `{"prompt":"x","stop":["${s}"],"max_tokens":2}`
      : where === 2
      ? `{"messages":[{"role":"user","content":"${s}"}],"max_tokens":2}`
      : `{"prompt":"x","model":"${s}","max_tokens":2}`;
    return {
      what: `lone surrogate ${s} (${where})`,
      path: where === 2 ? "/v1/chat/completions" : "/v1/completions",
      method: "POST",
      body,
    };
  }],
  ["invalid UTF-8", (r) => {
    const bad = pick(r, BAD_UTF8);
    const head = new TextEncoder().encode('{"prompt":"abc');
    const tail = new TextEncoder().encode('def","max_tokens":2}');
    return {
      what: `invalid UTF-8 ${bad.map((b) => b.toString(16)).join(" ")}`,
      path: "/v1/completions",
      method: "POST",
      body: new Uint8Array([...head, ...bad, ...tail]),
    };
  }],
  ["wrong shape", (r) => {
    const body = pick(r, [
      '{"prompt":[[1,2]]}',
      '{"prompt":["a","b"]}',
      '{"prompt":[]}',
      `{"prompt":[1,${VOCAB}]}`,
      '{"prompt":{"text":"hi"}}',
      `{"prompt":${JSON.stringify(new Array(CTX + 1).fill(5))}}`,
      '{"messages":"hi"}',
      '{"messages":[]}',
      '{"messages":[{"role":"user"}]}',
      '{"messages":[{"role":"tool","content":"x"}]}',
      '{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}',
      '{"messages":[null]}',
      '{"prompt":"x","tools":[{"type":"function"}]}',
      '{"prompt":"x","response_format":{"type":"json_object"}}',
      '{"prompt":"x","logit_bias":{"5":100}}',
      '{"prompt":"x","presence_penalty":1}',
      '{"prompt":"x","stream_options":"yes"}',
    ]);
    return {
      what: `shape ${body.slice(0, 50)}`,
      path: body.includes("messages")
        ? "/v1/chat/completions"
        : "/v1/completions",
      method: "POST",
      body,
    };
  }],
  ["too long for the context", (r) => {
    const words = ["the ", "cat ", "sat ", "on ", "a ", "mat ", "ü ", "🙂 "];
    let s = "";
    while (s.length < 6000 + r() * 20000) s += pick(r, words);
    return {
      what: `prompt of ${s.length} chars`,
      path: "/v1/completions",
      method: "POST",
      body: JSON.stringify({ prompt: s, max_tokens: 1 }),
    };
  }],
  ["unknown route", (r) => {
    const path = pick(r, [
      "/",
      "/v1",
      "/v1/completion",
      "/v2/completions",
      "/v1/embeddings",
      "/%F0%9F%99%82",
      "/v1/chat/completions/x",
      "/health/..%2f..",
      "/" + "a".repeat(2000),
    ]);
    return {
      what: `route ${path.slice(0, 30)}`,
      path,
      method: pick(r, ["GET", "POST"]),
      body: undefined,
    };
  }],
  ["wrong method", (r) => {
    const [path, method] = pick(
      r,
      [
        ["/v1/completions", "GET"],
        ["/v1/completions", "PUT"],
        ["/v1/chat/completions", "DELETE"],
        ["/v1/chat/completions", "PATCH"],
        ["/v1/models", "POST"],
        ["/health", "DELETE"],
        ["/metrics", "POST"],
      ] as const,
    );
    return {
      what: `${method} ${path}`,
      path,
      method,
      body: method === "GET" || method === "DELETE" ? undefined : "{}",
    };
  }],
  ["oversize", (r) => {
    const size = MAX_BODY + 1 + Math.floor(r() * MAX_BODY);
    const body = JSON.stringify({ prompt: "x".repeat(size), max_tokens: 1 });
    if (r() < 0.5) {
      return {
        what: `oversize ${size} with length`,
        path: "/v1/completions",
        method: "POST",
        body,
      };
    }
    // No Content-Length: counted while streaming in.
    const bytes = new TextEncoder().encode(body);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 8192) {
          c.enqueue(bytes.slice(i, i + 8192));
        }
        c.close();
      },
    });
    return {
      what: `oversize ${size} chunked`,
      path: "/v1/completions",
      method: "POST",
      body: stream,
    };
  }],
];

const WEIGHTS = [120, 150, 20, 50, 30, 50, 20, 25, 25, 20];

function generate(seed: number, count: number): Case[] {
  const r = testRng(seed);
  const total = WEIGHTS.reduce((a, b) => a + b, 0);
  return Array.from({ length: count }, () => {
    let u = r() * total;
    let i = 0;
    while (u >= WEIGHTS[i]) u -= WEIGHTS[i++];
    return GENERATORS[i][1](r);
  });
}

async function send(
  url: string,
  c: Case,
): Promise<{ status: number; text: string }> {
  const res = await fetch(url + c.path, {
    method: c.method,
    body: c.body,
    headers: { "content-type": "application/json", ...c.headers },
  });
  return { status: res.status, text: await res.text() };
}

/** Why a response fails the rule (a 4xx with an OpenAI error object), or "". */
function problem(status: number, text: string): string {
  if (status < 400 || status > 499) return `status ${status}`;
  try {
    const e = JSON.parse(text).error;
    if (
      typeof e?.message !== "string" || typeof e?.type !== "string" ||
      typeof e?.code !== "string"
    ) {
      return "no error object";
    }
  } catch {
    return "body is not JSON";
  }
  return "";
}

Deno.test("520 seeded malformed requests: each a 4xx with an error object, none a 5xx", async () => {
  const s = await serve(engine, {
    slots: 2,
    maxBodyBytes: MAX_BODY,
    bodyTimeoutMs: BODY_TIMEOUT_MS,
  });
  try {
    const cases = generate(20260521, 520);
    const kinds = new Set(cases.map((c) => c.what.split(" ")[0]));
    assert.ok(kinds.size >= 10, "the generator covers every category");
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < cases.length; i += 8) {
      await Promise.all(
        cases.slice(i, i + 8).map(async (c) => {
          const { status, text } = await send(s.url, c);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          const why = problem(status, text);
          if (why) failures.push(`${c.what}: ${why}: ${text.slice(0, 200)}`);
        }),
      );
    }
    assert.deepEqual(failures, []);
    assert.ok((statuses.get(413) ?? 0) > 0, "oversize bodies got 413");
    assert.ok((statuses.get(404) ?? 0) > 0 && (statuses.get(405) ?? 0) > 0);

    const metrics = await scrape(s.url);
    assert.doesNotMatch(metrics, /status="5\d\d"/, "no 5xx was ever sent");
    assert.equal(
      sample(metrics, "seer_generated_tokens_total"),
      0,
      "nothing malformed reached the model",
    );

    const ok = await post(`${s.url}/v1/completions`, {
      prompt: "Once upon a time",
      max_tokens: 16,
      temperature: 0,
    });
    assert.equal(ok.status, 200);
    assert.equal(
      (await ok.json()).choices[0].text,
      greedy(engine, "Once upon a time", 16).text,
    );
  } finally {
    await s.close();
  }
});

/** Writes `head` on a raw socket, optionally trickles more, and reads the answer. */
async function partial(
  port: number,
  head: string,
  trickle: { bytes: string; everyMs: number } | undefined,
  waitMs: number,
): Promise<{ status: number; body: string; ms: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const t0 = performance.now();
  const enc = new TextEncoder();
  await conn.write(enc.encode(head));
  let stopTrickle = false;
  const trickling = (async () => {
    if (!trickle) return;
    for (const ch of trickle.bytes) {
      await new Promise((r) => setTimeout(r, trickle.everyMs));
      if (stopTrickle) return;
      try {
        await conn.write(enc.encode(ch));
      } catch {
        return; // the server closed the connection: expected
      }
    }
  })();
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  const deadline = setTimeout(() => conn.close(), waitMs);
  let text = "";
  try {
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      text = new TextDecoder().decode(
        new Uint8Array(chunks.flatMap((c) => [...c])),
      );
      const [headers, body = ""] = text.split("\r\n\r\n");
      const length = Number(
        headers.match(/content-length: (\d+)/i)?.[1] ?? NaN,
      );
      if (body.length >= length) break;
    }
  } catch {
    // closed by the deadline above: text stays what arrived
  } finally {
    clearTimeout(deadline);
    stopTrickle = true;
    await trickling;
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  const status = Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
  return {
    status,
    body: text.split("\r\n\r\n")[1] ?? "",
    ms: performance.now() - t0,
  };
}

Deno.test("slowloris: stalled, trickling and unterminated bodies get 408 within the body timeout", async () => {
  const s = await serve(engine, { slots: 1, bodyTimeoutMs: BODY_TIMEOUT_MS });
  try {
    const port = Number(new URL(s.url).port);
    const start = (length: string) =>
      `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${length}\r\n\r\n`;
    // Bounded wait: the 300 ms body timeout plus generous scheduling slack.
    const WAIT = BODY_TIMEOUT_MS + 3000;
    const results = await Promise.all([
      partial(
        port,
        start("Content-Length: 200") + '{"prompt":',
        undefined,
        WAIT,
      ),
      partial(port, start("Content-Length: 200"), undefined, WAIT),
      partial(port, start("Content-Length: 100") + "{", {
        bytes: '"prompt":"aaaaaaaaaaaaaaaaaa"',
        everyMs: 60,
      }, WAIT),
      partial(
        port,
        start("Transfer-Encoding: chunked") + '5\r\n{"pro\r\n',
        undefined,
        WAIT,
      ),
      partial(port, start("Content-Length: 50") + "\xff\xfe", undefined, WAIT),
    ]);
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 408, `case ${i}: ${JSON.stringify(r)}`);
      assert.equal(JSON.parse(r.body).error.code, "request_timeout");
      assert.ok(
        r.ms >= BODY_TIMEOUT_MS - 5 && r.ms < WAIT,
        `case ${i} answered after ${r.ms} ms`,
      );
    }
    const ok = await post(`${s.url}/v1/completions`, {
      prompt: "Once upon a time",
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(
      (await ok.json()).choices[0].text,
      greedy(engine, "Once upon a time", 8).text,
    );
  } finally {
    await s.close();
  }
});
