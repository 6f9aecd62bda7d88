/**
 * `deno task serve`: the OpenAI-compatible server on Deno.serve. Listens
 * at once (/health says 503 until the model is loaded), then loads it.
 * SIGINT/SIGTERM: stop accepting connections, refuse new generations,
 * let running ones finish for a grace period, cancel the rest, exit 0.
 */
import { Engine } from "../engine.ts";
import { number, type Options, parse, string } from "../cli/args.ts";
import { SeerError } from "../errors.ts";
import { createApp } from "./app.ts";
import { mountWeb } from "./web.ts";
import { loadImageBackend } from "./image_models.ts";
import { ThreadPool } from "../worker/pool.ts";
import {
  type Drafter,
  DRAFTERS,
  MAX_DRAFT_K,
  type SpeculativeSpec,
} from "./params.ts";
import type { DraftConfig } from "./speculative.ts";

export const HELP = `usage: deno task serve [options]

  --model PATH          model file: llama2.c .bin or GGUF (default: built-in stories260K)
  --tokenizer PATH      llama2.c tokenizer.bin (needed for llama2.c models)
  --quant q8_0          quantize f32 weights to q8_0 at load
  --context N           context length (overrides the model file's)
  --threads N           threads splitting every matrix product (default 1); same output
  --model-id NAME       the id /v1/models reports (default: the file name)
  --host HOST           address to bind (default 127.0.0.1)
  --port PORT           port to bind, 0 = any free one (default 8080)
  --api-key KEY         require 'Authorization: Bearer KEY' (default: $SEER_API_KEY, else open)
  --slots N             concurrent generations, one KV cache each (default 4)
  --max-queue N         requests waiting for a slot before 429 (default 64)
  --max-body BYTES      largest request body (default 1048576)
  --body-timeout S      seconds to receive a request body (default 10)
  --timeout S           deadline per request, queueing included (default 600)
  --shutdown-grace S    on SIGINT/SIGTERM, seconds running requests may finish (default 10)
  --image-models DIR    base/ and superres/ for /v1/images/generations, loaded on
                        its first request (default: the shipped models/image/)
  --speculative D       default drafter: ${
  DRAFTERS.join("|")
} (requests may override;
                        only this one of model, q8 is loaded, so only it is offered)
  --draft-k K           longest draft (1..${MAX_DRAFT_K}; default 6, adapts to acceptance)
  --draft-model PATH    the separate draft model for --speculative model (same vocabulary)
  --draft-layers L      layers the layerskip drafter keeps (default: half the target's)
  --help                this text`;

const OPTIONS: Options = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  quant: { type: "string" },
  context: { type: "string" },
  threads: { type: "string" },
  "model-id": { type: "string" },
  host: { type: "string" },
  port: { type: "string" },
  "api-key": { type: "string" },
  slots: { type: "string" },
  "max-queue": { type: "string" },
  "max-body": { type: "string" },
  "body-timeout": { type: "string" },
  timeout: { type: "string" },
  "shutdown-grace": { type: "string" },
  "image-models": { type: "string" },
  speculative: { type: "string" },
  "draft-k": { type: "string" },
  "draft-model": { type: "string" },
  "draft-layers": { type: "string" },
  help: { type: "boolean" },
};

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" ||
    /^127\./.test(host);
}

function speculativeFlags(
  v: Record<string, string | boolean | undefined>,
): DraftConfig {
  const drafter = string(v, "speculative");
  const k = number(v, "draft-k", { min: 1, max: MAX_DRAFT_K, integer: true });
  const draftModel = string(v, "draft-model");
  const draftLayers = number(v, "draft-layers", {
    min: 1,
    max: 4096,
    integer: true,
  });
  if (drafter === undefined) {
    const given = ["draft-k", "draft-model", "draft-layers"].filter((f) =>
      v[f] !== undefined
    );
    if (given.length) {
      throw new SeerError(
        "invalid_argument",
        `--${given[0]} needs --speculative`,
      );
    }
    return {};
  }
  if (!(DRAFTERS as readonly string[]).includes(drafter)) {
    throw new SeerError(
      "invalid_argument",
      `--speculative must be one of ${DRAFTERS.join(", ")}, got "${drafter}"`,
    );
  }
  const spec: SpeculativeSpec = {
    drafter: drafter as Drafter,
    ...(k ? { k } : {}),
  };
  return { default: spec, draftModel, draftLayers };
}

export async function serve(args: string[]): Promise<number> {
  const v = parse(args, OPTIONS, HELP);
  if (v.help) {
    console.log(HELP);
    return 0;
  }
  const quant = string(v, "quant");
  if (quant !== undefined && quant !== "q8_0") {
    throw new SeerError(
      "invalid_argument",
      `--quant must be q8_0, got "${quant}"`,
    );
  }
  const host = string(v, "host") ?? "127.0.0.1";
  const port = number(v, "port", { min: 0, max: 65535, integer: true }) ?? 8080;
  const apiKey = string(v, "api-key") ?? Deno.env.get("SEER_API_KEY");
  if (apiKey !== undefined && apiKey.trim() === "") {
    throw new SeerError("invalid_argument", "--api-key must not be empty");
  }
  const seconds = (name: string, max: number) => {
    const s = number(v, name, { min: 0, max });
    return s === undefined ? undefined : s * 1000;
  };
  const grace = seconds("shutdown-grace", 3600) ?? 10_000;
  const speculative = speculativeFlags(v);

  const threads = number(v, "threads", { min: 1, max: 64, integer: true }) ??
    1;
  const pool = threads > 1 ? ThreadPool.create({ threads }) : undefined;
  const loading = (async () =>
    Engine.load({
      runtime: (await pool)?.runtime,
      model: string(v, "model"),
      tokenizer: string(v, "tokenizer"),
      quant: quant as "q8_0" | undefined,
      contextLength: number(v, "context", {
        min: 1,
        max: 1 << 20,
        integer: true,
      }),
    }))();
  const seer = createApp(loading, {
    slots: number(v, "slots", { min: 1, max: 256, integer: true }),
    maxQueue: number(v, "max-queue", { min: 0, max: 1 << 16, integer: true }),
    maxBodyBytes: number(v, "max-body", {
      min: 1024,
      max: 1 << 30,
      integer: true,
    }),
    bodyTimeoutMs: seconds("body-timeout", 3600),
    timeoutMs: seconds("timeout", 86400),
    apiKey,
    modelId: string(v, "model-id"),
    speculative,
    images: () => {
      const dir = string(v, "image-models");
      return loadImageBackend(
        dir === undefined ? undefined : dir.endsWith("/") ? dir : `${dir}/`,
      );
    },
  });
  // The browser page, from build/web/ (`deno task web`), at /.
  const webDir = new URL("../../build/web/", import.meta.url);
  mountWeb(
    seer.app,
    (name) => Deno.readFile(new URL(name, webDir)).catch(() => null),
  );

  if (apiKey === undefined && !isLoopback(host)) {
    console.error(
      `seer serve: warning: no API key and bound to ${host}: anyone who can reach it can use it; pass --api-key or set SEER_API_KEY`,
    );
  }

  const server = Deno.serve({
    hostname: host,
    port,
    onListen: ({ hostname, port }) => {
      // The first stdout line says where to connect (tests read it for --port 0).
      console.log(
        `seer: listening on http://${
          hostname.includes(":") ? `[${hostname}]` : hostname
        }:${port}`,
      );
    },
  }, seer.fetch);

  // The first signal drains (refuse new work, let running requests finish
  // within the grace period); a second one cancels what is still running.
  let signalCount = 0;
  let loadFailed = 0;
  const stopped = new Promise<string>((resolve) => {
    for (const s of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(s, () => {
        if (++signalCount > 1) seer.abortAll();
        resolve(s);
      });
    }
    seer.ready.then(
      async () => {
        const e = await loading;
        console.error(
          `seer serve: model ${e.name} ready (context ${e.model.contextLength}, vocabulary ${e.tokenizer.vocab.tokens.length})`,
        );
      },
      (e) => {
        console.error(
          `seer serve: cannot start: ${e instanceof Error ? e.message : e}`,
        );
        loadFailed = e instanceof SeerError && e.code === "invalid_argument"
          ? 2
          : 1;
        resolve("load failure");
      },
    );
  });

  const why = await stopped;
  console.error(`seer serve: ${why}: shutting down (grace ${grace / 1000} s)`);
  seer.close();
  const finished = server.shutdown();
  const timer = setTimeout(() => seer.abortAll(), grace);
  await seer.idle();
  clearTimeout(timer);
  await finished;
  seer.dispose();
  (await loading.catch(() => undefined))?.dispose();
  await (await pool?.catch(() => undefined))?.dispose();
  return loadFailed;
}

if (import.meta.main) {
  try {
    Deno.exit(await serve(Deno.args));
  } catch (e) {
    if (e instanceof SeerError) {
      console.error(`seer serve: ${e.message}`);
      Deno.exit(e.code === "invalid_argument" ? 2 : 1);
    }
    throw e;
  }
}
