/**
 * The page's files as the server mounts them (src/server/web.ts): the
 * isolation headers on every file, types, the API's routes winning, and
 * nothing outside the page's names ever read.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { ISOLATION_HEADERS, mountWeb } from "../../src/server/web.ts";

function site(files: Record<string, string>) {
  const asked: string[] = [];
  const app = new Hono();
  app.get("/health", (c) => c.json({ status: "ok" }));
  mountWeb(app, (name) => {
    asked.push(name);
    return Promise.resolve(
      name in files ? new TextEncoder().encode(files[name]) : null,
    );
  });
  return { app, asked };
}

Deno.test("web files: served with COOP/COEP/CORP and their types", async () => {
  const { app } = site({
    "index.html": "<html>",
    "app.js": "1",
    "seer.wasm": "w",
    "models/tok512.bin": "t",
    "models/image-base.json": "{}",
    "models/image-base.safetensors": "s",
  });
  for (
    const [path, type, body] of [
      ["/", "text/html; charset=utf-8", "<html>"],
      ["/app.js", "text/javascript; charset=utf-8", "1"],
      ["/seer.wasm", "application/wasm", "w"],
      ["/models/tok512.bin", "application/octet-stream", "t"],
      ["/models/image-base.json", "application/json", "{}"],
      ["/models/image-base.safetensors", "application/octet-stream", "s"],
    ]
  ) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-type"), type, path);
    for (const [k, v] of Object.entries(ISOLATION_HEADERS)) {
      assert.equal(res.headers.get(k), v, `${path}: ${k}`);
    }
    assert.equal(await res.text(), body);
  }
});

Deno.test("web files: API routes win; other names are never read", async () => {
  const { app, asked } = site({ "index.html": "<html>" });
  const health = await app.request("/health");
  assert.deepEqual(await health.json(), { status: "ok" });
  for (
    const path of [
      "/deno.json",
      "/main.ts",
      "/..%2Fdeno.json",
      "/%2e%2e/deno.json",
      "/.env",
      "/models/../deno.json",
      "/src/app.js",
      "/missing.js",
    ]
  ) {
    const res = await app.request(path);
    assert.equal(res.status, 404, path);
    await res.body?.cancel();
  }
  assert.deepEqual(asked, ["missing.js"]);
});

Deno.test("web files: a missing build says how to make it", async () => {
  const { app } = site({});
  const res = await app.request("/");
  assert.equal(res.status, 404);
  assert.match(await res.text(), /deno task web/);
});
