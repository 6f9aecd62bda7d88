/**
 * The browser page (build/web/, made by `deno task web`) served at `/`,
 * every file with the cross-origin isolation headers that shared memory
 * (and so the page's worker pool) needs. Web-standard: the caller supplies
 * how to read a file, so any runtime can mount it.
 *
 *   mountWeb(seer.app, (name) => Deno.readFile(dir + name).catch(() => null));
 */
import type { Hono } from "hono";

/** COOP + COEP make the page cross-origin isolated; CORP lets it load its own files. */
export const ISOLATION_HEADERS: Record<string, string> = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
  "cross-origin-resource-policy": "same-origin",
};

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  wasm: "application/wasm",
  bin: "application/octet-stream",
};

/** Model files the page fetches: served from models/ only. */
const MODEL_TYPES: Record<string, string> = {
  json: "application/json",
  safetensors: "application/octet-stream",
};

/** A file name the page may ask for: one folder deep, a known type, no "..". */
const NAME = /^(?:models\/)?[A-Za-z0-9_-][A-Za-z0-9_.-]*\.([a-z]+)$/;

export function mountWeb(
  app: Hono,
  read: (name: string) => Promise<Uint8Array | null>,
): void {
  const serve = async (name: string) => {
    const ext = NAME.exec(name)?.[1] ?? "";
    // Only names under models/ may be JSON, so the project's own
    // configuration (deno.json) can never be read through the page.
    const type = TYPES[ext] ??
      (name.startsWith("models/") ? MODEL_TYPES[ext] : undefined);
    const bytes = type ? await read(name) : null;
    if (!bytes) return null;
    return new Response(bytes as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": type,
        "cache-control": "no-cache",
        ...ISOLATION_HEADERS,
      },
    });
  };
  app.get("/", async (c) =>
    await serve("index.html") ??
      c.text(
        "The web page is not built: run `deno task web` (`deno task serve` does it first).\n",
        404,
      ));
  // Registered after the API, so its routes (/health, /metrics, …) win.
  app.get(
    "/:name{[^/]+}",
    async (c) => await serve(c.req.param("name")) ?? c.notFound(),
  );
  app.get(
    "/models/:name{[^/]+}",
    async (c) => await serve(`models/${c.req.param("name")}`) ?? c.notFound(),
  );
}
