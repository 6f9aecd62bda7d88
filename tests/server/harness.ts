/**
 * Server test helpers: start the real app on a loopback port (port 0 →
 * whatever is free), read Server-Sent Events and Prometheus samples, and
 * compute the engine's own greedy answer to compare the server against.
 */
import assert from "node:assert/strict";
import type { Engine } from "../../src/engine.ts";
import {
  createApp,
  type SeerApp,
  type ServerOptions,
} from "../../src/server/app.ts";

export interface Running {
  url: string;
  seer: SeerApp;
  close(): Promise<void>;
}

export async function serve(
  engine: Engine,
  options: ServerOptions = {},
): Promise<Running> {
  const seer = createApp(engine, options);
  await seer.ready;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    seer.fetch,
  );
  const { port } = server.addr as Deno.NetAddr;
  return {
    url: `http://127.0.0.1:${port}`,
    seer,
    async close() {
      seer.close();
      seer.abortAll();
      await seer.idle();
      await server.shutdown();
      seer.dispose();
    },
  };
}

export function post(
  url: string,
  body: unknown,
  init: RequestInit = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });
}

/** The `data:` payloads of an SSE body, in order. */
export function sseData(text: string): string[] {
  assert.ok(text.endsWith("\n\n"), "an SSE body ends with a blank line");
  return text.trimEnd().split("\n\n").map((event) => {
    assert.match(
      event,
      /^data: /,
      `every event is one data line: ${JSON.stringify(event)}`,
    );
    return event.slice("data: ".length);
  });
}

/** A sample from Prometheus text (0 when the series is absent). */
export function sample(metrics: string, name: string, labels = ""): number {
  const key = labels ? `${name}{${labels}}` : name;
  for (const line of metrics.split("\n")) {
    if (line.startsWith(key + " ")) return Number(line.slice(key.length + 1));
  }
  return 0;
}

export async function scrape(
  url: string,
  init: RequestInit = {},
): Promise<string> {
  const res = await fetch(`${url}/metrics`, init);
  assert.equal(res.status, 200);
  return await res.text();
}

/** What the engine itself generates greedily: the reference for the server. */
export function greedy(
  engine: Engine,
  prompt: string | number[],
  maxTokens: number,
  stop: string[] = [],
) {
  return engine.complete({
    prompt,
    maxTokens,
    sampling: { temperature: 0 },
    stop,
  });
}

/** Asserts a response is an OpenAI error object with the given status. */
export async function assertError(
  res: Response,
  status: number,
  param?: string | null,
): Promise<
  { message: string; type: string; code: string; param: string | null }
> {
  const text = await res.text();
  assert.equal(
    res.status,
    status,
    `expected ${status}, got ${res.status}: ${text}`,
  );
  const body = JSON.parse(text);
  assert.equal(typeof body.error?.message, "string", text);
  assert.equal(typeof body.error?.type, "string", text);
  assert.equal(typeof body.error?.code, "string", text);
  if (param !== undefined) assert.equal(body.error.param, param, text);
  return body.error;
}
