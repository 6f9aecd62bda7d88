/**
 * seer's OpenAI-compatible HTTP API as a Hono app, built from an engine
 * (or the promise of one: /health answers 503 until it resolves) and
 * options. Web-standard APIs only, so the Deno entry (main.ts) and an edge
 * bundle can both serve it.
 *
 *   const seer = createApp(Engine.load(), { slots: 4, apiKey });
 *   Deno.serve({ port: 8080 }, seer.fetch);
 *
 * Routes: POST /v1/completions, POST /v1/chat/completions (JSON or
 * Server-Sent Events), POST /v1/images/generations (when `images` is
 * given; see images.ts), GET /v1/models, GET /health, GET /metrics. Every
 * error is an OpenAI error object from the one onError below.
 */
import { type Context, Hono } from "hono";
import type { Engine, GenerateResult } from "../engine.ts";
import type { TokenEvent } from "../generate/decoder.ts";
import { readJsonObject } from "./body.ts";
import { CHAT_STOP, renderChat } from "./chat.ts";
import { ApiError, toApiError } from "./errors.ts";
import {
  base64,
  type ImageBackend,
  type ImageParams,
  LazyImages,
  parseImageRequest,
} from "./images.ts";
import { ServerMetrics } from "./metrics.ts";
import { type Kind, type SeerFinish, Shapes } from "./openai.ts";
import {
  type CommonParams,
  type ModelLimits,
  parseChat,
  parseCompletion,
} from "./params.ts";
import {
  DeadlineExceeded,
  fullTurn,
  type Job,
  Scheduler,
  ShuttingDown,
} from "./scheduler.ts";
import { type DraftConfig, Drafters } from "./speculative.ts";

export interface ServerOptions {
  /** Concurrent generations, each on its own engine fork (default 4). */
  slots?: number;
  /** Requests that may wait for a slot before new ones get 429 (default 64). */
  maxQueue?: number;
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Time allowed to receive a request body (default 10 s). */
  bodyTimeoutMs?: number;
  /** Deadline per request, queueing included (default 10 min). */
  timeoutMs?: number;
  /** Required as `Authorization: Bearer <key>` on /v1/* and /metrics when set. */
  apiKey?: string;
  /** The id /v1/models reports (default: the model file's name). */
  modelId?: string;
  /** Speculative decoding: the default drafter and its options (`--speculative`, …). */
  speculative?: DraftConfig;
  /** How generation yields to the event loop between tokens (see scheduler.ts). */
  turn?: () => Promise<void>;
  /** Compute between cheap event-loop turns, in ms (see scheduler.ts; default 2). */
  sliceMs?: number;
  /** Time between full event-loop turns, in ms (see scheduler.ts; default 10). */
  flushMs?: number;
  /**
   * Loads the image models for POST /v1/images/generations, on its first
   * request (image_models.ts on Deno); without it that route answers 404.
   */
  images?: () => Promise<ImageBackend>;
  /** Where server-side failures are reported (default console.error). */
  log?: (message: string, error?: unknown) => void;
}

export interface SeerApp {
  app: Hono;
  fetch: (req: Request) => Response | Promise<Response>;
  metrics: ServerMetrics;
  /** Resolves when the engine is loaded and requests can be served. */
  ready: Promise<void>;
  /** Refuses new generations (503) from now on; running ones continue. */
  close(): void;
  /** Aborts every queued and running generation. */
  abortAll(): void;
  /** Resolves when no generation is queued or running. */
  idle(): Promise<void>;
  /** Frees the slots' engine forks (the engine itself stays the caller's). */
  dispose(): void;
}

const DEFAULTS = {
  slots: 4,
  maxQueue: 64,
  maxBodyBytes: 1 << 20,
  bodyTimeoutMs: 10_000,
  timeoutMs: 600_000,
};

const ROUTES: Record<string, string[]> = {
  "/v1/completions": ["POST"],
  "/v1/chat/completions": ["POST"],
  "/v1/images/generations": ["POST"],
  "/v1/models": ["GET", "HEAD"],
  "/health": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
};

/** The client went away (request signal or stream cancelled). */
class ClientGone extends Error {
  constructor() {
    super("the client closed the connection");
    this.name = "ClientGone";
  }
}

function json(
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

function errorResponse(err: ApiError): Response {
  return json(err.toJSON(), err.status, err.headers);
}

/** Constant-time equality of two secrets: compares SHA-256 digests byte by byte. */
async function sameSecret(given: string, expected: string): Promise<boolean> {
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", enc.encode(given)),
    crypto.subtle.digest("SHA-256", enc.encode(expected)),
  ]);
  const x = new Uint8Array(a), y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function modelIdFrom(path: string): string {
  const base = path.split(/[\\/]/).pop() ?? path;
  return base.replace(/\.(bin|gguf)$/i, "") || "seer";
}

/** Largest UTF-8 length of any token's text: bounds tokens from below by bytes. */
function maxPieceBytes(engine: Engine): number {
  const enc = new TextEncoder();
  let max = 1;
  for (const t of engine.tokenizer.vocab.tokens) {
    max = Math.max(max, enc.encode(t).length);
  }
  return max;
}

interface Loaded {
  engine: Engine;
  scheduler: Scheduler;
  drafters: Drafters;
  limits: ModelLimits;
  modelId: string;
  pieceBytes: number;
  created: number;
}

export function createApp(
  engine: Engine | Promise<Engine>,
  options: ServerOptions = {},
): SeerApp {
  // Options given as undefined (unset flags) keep their defaults.
  const o = { ...DEFAULTS, ...options };
  for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
    o[key] = options[key] ?? DEFAULTS[key];
  }
  const log = options.log ??
    ((m: string, e?: unknown) => console.error(`seer server: ${m}`, e ?? ""));
  let loaded: Loaded | undefined;
  let loadError: unknown;
  let closed = false;

  const metrics = new ServerMetrics(
    () => loaded?.scheduler.queueDepth ?? 0,
    () => loaded?.scheduler.busySlots ?? 0,
    () => o.slots,
  );

  const ready = (async () => {
    try {
      const e = await engine;
      const drafters = await Drafters.load(e, options.speculative ?? {});
      const scheduler = new Scheduler(e, {
        slots: o.slots,
        maxQueue: o.maxQueue,
        turn: options.turn,
        sliceMs: options.sliceMs,
        flushMs: options.flushMs,
        log,
      });
      if (closed) scheduler.close();
      loaded = {
        engine: e,
        scheduler,
        drafters,
        limits: {
          contextLength: e.model.contextLength,
          vocabSize: e.tokenizer.vocab.tokens.length,
        },
        modelId: o.modelId ?? modelIdFrom(e.name),
        pieceBytes: maxPieceBytes(e),
        created: Math.floor(Date.now() / 1000),
      };
    } catch (e) {
      loadError = e;
      throw e;
    }
  })();
  // The caller sees a failed load through `ready`; /health reports it too.
  ready.catch(() => {});

  function need(): Loaded {
    if (closed) {
      throw new ApiError(
        503,
        "shutting_down",
        "the server is shutting down; retry on another instance",
      );
    }
    if (loaded) return loaded;
    if (loadError !== undefined) {
      throw new ApiError(
        503,
        "model_unavailable",
        "the model failed to load; see the server log",
      );
    }
    throw new ApiError(
      503,
      "model_loading",
      "the model is still loading; retry in a moment",
      null,
      {
        "Retry-After": "1",
      },
    );
  }

  const app = new Hono();

  // Count every answer by route and status; unknown paths share one label
  // so hostile URLs cannot grow the series without bound.
  app.use("*", async (c, next) => {
    await next();
    const path = new URL(c.req.url).pathname;
    metrics.requests.inc({
      route: Object.hasOwn(ROUTES, path) ? path : "other",
      status: String(c.res.status),
    });
  });

  if (options.apiKey !== undefined) {
    const key = options.apiKey;
    const guard = async (c: Context, next: () => Promise<void>) => {
      const header = c.req.header("authorization");
      const given = header?.match(/^Bearer\s+(.+)$/i)?.[1];
      if (given === undefined) {
        throw new ApiError(
          401,
          "missing_api_key",
          "this server needs an API key: send the header 'Authorization: Bearer <key>'",
          null,
          { "WWW-Authenticate": "Bearer" },
        );
      }
      if (!(await sameSecret(given.trim(), key))) {
        throw new ApiError(
          401,
          "invalid_api_key",
          "the API key is not valid for this server",
          null,
          {
            "WWW-Authenticate": "Bearer",
          },
        );
      }
      await next();
    };
    app.use("/v1/*", guard);
    app.use("/metrics", guard);
  }

  app.get("/health", () => {
    if (closed) return json({ status: "shutting_down" }, 503);
    if (loaded) {
      const s = loaded.scheduler;
      return json({
        status: "ok",
        slots_idle: s.slots - s.busySlots,
        slots_processing: s.busySlots,
        queue_depth: s.queueDepth,
      });
    }
    const err = loadError === undefined
      ? new ApiError(503, "model_loading", "the model is still loading")
      : new ApiError(
        503,
        "model_unavailable",
        "the model failed to load; see the server log",
      );
    return json(
      {
        status: loadError === undefined ? "loading" : "error",
        ...err.toJSON(),
      },
      503,
      loadError === undefined ? { "Retry-After": "1" } : {},
    );
  });

  app.get("/metrics", () =>
    new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    }));

  function modelCard(l: Loaded) {
    return {
      id: l.modelId,
      object: "model",
      created: l.created,
      owned_by: "seer",
      context_length: l.limits.contextLength,
      vocab_size: l.limits.vocabSize,
    };
  }

  app.get("/v1/models", () => {
    const l = need();
    return json({ object: "list", data: [modelCard(l)] });
  });

  app.get("/v1/models/:id", (c) => {
    const l = need();
    if (c.req.param("id") !== l.modelId) {
      throw new ApiError(
        404,
        "model_not_found",
        `no model "${c.req.param("id")}" here; this server has "${l.modelId}"`,
        "model",
      );
    }
    return json(modelCard(l));
  });

  /** Prompt text to ids, refusing prompts the context cannot hold. */
  function encodePrompt(l: Loaded, text: string, param: string): number[] {
    const overflow = (what: string) =>
      new ApiError(
        400,
        "context_length_exceeded",
        `the prompt is ${what} but the context holds ${l.limits.contextLength} tokens; shorten the ${param}`,
        param,
      );
    // Every token covers at most pieceBytes bytes, so a long text overflows
    // for sure before any tokenizing work is spent on it.
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > (l.limits.contextLength + 1) * l.pieceBytes) {
      throw overflow(
        `${bytes} bytes (more than ${l.limits.contextLength} tokens)`,
      );
    }
    const ids = l.engine.encode(text);
    if (ids.length > l.limits.contextLength) {
      throw overflow(`${ids.length} tokens`);
    }
    return ids;
  }

  async function generate(c: Context, kind: Kind): Promise<Response> {
    const arrived = performance.now();
    const l = need();
    const body = await readJsonObject(c.req.raw, {
      maxBytes: o.maxBodyBytes,
      timeoutMs: o.bodyTimeoutMs,
    });
    let p: CommonParams;
    let prompt: number[];
    let stop: string[];
    if (kind === "chat") {
      const chat = parseChat(body, l.limits);
      p = chat;
      prompt = encodePrompt(l, renderChat(chat.messages), "messages");
      stop = [...chat.stop, ...CHAT_STOP];
    } else {
      const completion = parseCompletion(body, l.limits);
      p = completion;
      prompt = typeof completion.prompt === "string"
        ? encodePrompt(l, completion.prompt, "prompt")
        : completion.prompt;
      stop = completion.stop;
    }
    const decoder = await l.drafters.decoderFor(p.speculative);
    const seed = p.seed ?? Math.floor(Math.random() * 2 ** 32);
    const shapes = new Shapes(kind, l.modelId);

    const controller = new AbortController();
    const clientSignal = c.req.raw.signal;
    const onGone = () => controller.abort(new ClientGone());
    clientSignal.addEventListener("abort", onGone, { once: true });

    let started = false;
    let last = 0;
    const finishOf = (result: GenerateResult): SeerFinish =>
      result.finish_reason === "abort" &&
        controller.signal.reason instanceof DeadlineExceeded
        ? "deadline"
        : result.finish_reason;
    const account = (result: GenerateResult) => {
      clientSignal.removeEventListener("abort", onGone);
      metrics.promptTokens.inc({}, result.n_prompt_tokens);
      metrics.generatedTokens.inc({}, result.stats.generated_tokens);
      if (result.stats.drafted_tokens !== undefined) {
        metrics.draftedTokens.inc({}, result.stats.drafted_tokens);
        metrics.acceptedTokens.inc({}, result.stats.accepted_tokens ?? 0);
      }
      metrics.generations.inc({ finish_reason: finishOf(result) });
    };
    /** Why a request ended without a result, as an error response. */
    const errorFor = (err: unknown) => {
      if (err instanceof DeadlineExceeded) {
        return new ApiError(
          503,
          "timeout",
          "no slot became free before the request's deadline; retry later",
          null,
          {
            "Retry-After": "1",
          },
        );
      }
      if (err instanceof ShuttingDown) {
        return new ApiError(
          503,
          "shutting_down",
          "the server shut down before this request was done; retry on another instance",
        );
      }
      if (err instanceof ClientGone) {
        return new ApiError(499, "client_closed_request", err.message);
      }
      return toApiError(err);
    };
    const failed = (err: unknown) => {
      clientSignal.removeEventListener("abort", onGone);
      if (started) metrics.generations.inc({ finish_reason: "error" });
      const api = errorFor(err);
      if (api.code === "internal_error") log("generation failed", err);
      return api;
    };
    const timing = (event: TokenEvent) => {
      if (event.token === null) return;
      const now = performance.now();
      if (last === 0) metrics.timeToFirstToken.observe((now - arrived) / 1000);
      else metrics.tokenLatency.observe((now - last) / 1000);
      last = now;
    };
    const job: Omit<Job, "onToken" | "onDone" | "onError"> = {
      controller,
      deadline: arrived + o.timeoutMs,
      start: (engine) => {
        started = true;
        return engine.generate({
          prompt,
          maxTokens: p.maxTokens,
          sampling: p.sampling,
          seed,
          stop,
          signal: controller.signal,
          decoder,
        });
      },
    };

    if (!p.stream) {
      const result = await new Promise<GenerateResult>((resolve, reject) => {
        l.scheduler.submit({
          ...job,
          onToken: timing,
          onDone: resolve,
          onError: reject,
        });
      }).catch((e) => {
        throw failed(e);
      });
      account(result);
      const finish = finishOf(result);
      if (finish === "abort") {
        return errorResponse(errorFor(controller.signal.reason));
      }
      return json(shapes.full(result, finish, seed));
    }

    const enc = new TextEncoder();
    let out: ReadableStreamDefaultController<Uint8Array> | undefined;
    let open = true;
    const send = (data: unknown) => {
      if (!open) return;
      try {
        out!.enqueue(
          enc.encode(
            `data: ${
              typeof data === "string" ? data : JSON.stringify(data)
            }\n\n`,
          ),
        );
      } catch {
        open = false; // the client is gone; the abort below stops generation
      }
    };
    const end = () => {
      if (!open) return;
      open = false;
      try {
        out!.close();
      } catch { /* already closed by a cancel */ }
    };
    const stream = new ReadableStream<Uint8Array>({
      start(ctrl) {
        out = ctrl;
        const opening = shapes.opening();
        if (opening) send(opening);
      },
      cancel() {
        open = false;
        controller.abort(new ClientGone());
      },
    });
    const streamed: Job = {
      ...job,
      onToken: (event) => {
        timing(event);
        if (event.text) send(shapes.delta(event.text));
      },
      onDone: (result) => {
        account(result);
        const finish = finishOf(result);
        send(shapes.closing(result, finish, seed));
        if (p.includeUsage) send(shapes.usageOnly(result));
        send("[DONE]");
        end();
      },
      onError: (err) => {
        // Headers are sent: the error travels as an event, as OpenAI does.
        send(failed(err).toJSON());
        end();
      },
    };
    try {
      l.scheduler.submit(streamed);
    } catch (e) {
      clientSignal.removeEventListener("abort", onGone);
      throw e;
    }
    return new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
      },
    });
  }

  app.post("/v1/completions", (c) => generate(c, "completion"));
  app.post("/v1/chat/completions", (c) => generate(c, "chat"));

  // Image generation does not go through the text scheduler: it runs
  // step by step on its own models and takes a full event-loop turn after
  // every denoising step (one step of 16 guided 28×28 images is ≈ 0.1 s on
  // the 2-core dev machine), so text requests keep streaming meanwhile.
  const images = options.images
    ? new LazyImages(options.images, log)
    : undefined;
  const imageJobs = new Set<AbortController>();
  const imageIdle: (() => void)[] = [];
  const imagesIdle = () =>
    imageJobs.size === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => imageIdle.push(resolve));

  app.post("/v1/images/generations", async (c) => {
    if (closed) {
      throw new ApiError(
        503,
        "shutting_down",
        "the server is shutting down; retry on another instance",
      );
    }
    if (!images) {
      throw new ApiError(
        404,
        "model_not_found",
        "this server has no image models; start it with `deno task serve` (the Deno server loads models/image/)",
        "model",
      );
    }
    const body = await readJsonObject(c.req.raw, {
      maxBytes: o.maxBodyBytes,
      timeoutMs: o.bodyTimeoutMs,
    });
    const backend = await images.get();
    let p: ImageParams;
    try {
      p = parseImageRequest(body, backend);
    } catch (e) {
      metrics.imageRequests.inc({ outcome: "invalid" });
      throw e;
    }
    // As many image jobs as text slots; more would only slow each down.
    if (imageJobs.size >= o.slots) {
      throw new ApiError(
        429,
        "queue_full",
        `${imageJobs.size} image requests are running, the most this server allows; retry after 1 s`,
        null,
        { "Retry-After": "1" },
      );
    }
    const controller = new AbortController();
    const clientSignal = c.req.raw.signal;
    const onGone = () => controller.abort(new ClientGone());
    clientSignal.addEventListener("abort", onGone, { once: true });
    const timer = setTimeout(
      () => controller.abort(new DeadlineExceeded()),
      o.timeoutMs,
    );
    imageJobs.add(controller);
    let pngs: Uint8Array[];
    try {
      pngs = await backend.generate(p, {
        signal: controller.signal,
        onStep: fullTurn,
      });
    } catch (e) {
      const why = controller.signal.aborted ? controller.signal.reason : e;
      const outcome = why instanceof ClientGone
        ? "aborted"
        : why instanceof DeadlineExceeded
        ? "deadline"
        : toApiError(why).status === 400
        ? "invalid"
        : "error";
      metrics.imageRequests.inc({ outcome });
      if (why instanceof ClientGone) {
        throw new ApiError(499, "client_closed_request", why.message);
      }
      if (why instanceof DeadlineExceeded) {
        throw new ApiError(
          503,
          "timeout",
          "the images were not done before the request's deadline; ask for fewer images or steps",
        );
      }
      if (why instanceof ShuttingDown) {
        throw new ApiError(
          503,
          "shutting_down",
          "the server shut down before these images were done; retry on another instance",
        );
      }
      throw why;
    } finally {
      clearTimeout(timer);
      clientSignal.removeEventListener("abort", onGone);
      imageJobs.delete(controller);
      if (imageJobs.size === 0) {
        for (const resolve of imageIdle.splice(0)) resolve();
      }
    }
    metrics.imageRequests.inc({ outcome: "ok" });
    metrics.images.inc({}, pngs.length);
    return json({
      created: Math.floor(Date.now() / 1000),
      data: pngs.map((png) => ({ b64_json: base64(png) })),
      seed: p.seed,
      size: `${backend.size}x${backend.size}`,
      output_format: "png",
    });
  });

  // A known path with the wrong method: 405 naming the allowed ones.
  for (const [path, methods] of Object.entries(ROUTES)) {
    app.all(path, (c) => {
      throw new ApiError(
        405,
        "method_not_allowed",
        `${c.req.method} is not allowed on ${path}; use ${
          methods.filter((m) => m !== "HEAD").join(" or ")
        }`,
        null,
        { Allow: methods.join(", ") },
      );
    });
  }

  app.notFound((c) =>
    errorResponse(
      new ApiError(
        404,
        "not_found",
        `no route ${c.req.method} ${
          new URL(c.req.url).pathname
        }; the API is under /v1 (completions, chat/completions, images/generations, models)`,
      ),
    )
  );

  app.onError((err) => {
    const api = toApiError(err);
    if (api.status >= 500 && !(err instanceof ApiError)) {
      log("request failed", err);
    }
    return errorResponse(api);
  });

  return {
    app,
    fetch: (req) => app.fetch(req),
    metrics,
    ready,
    close() {
      closed = true;
      loaded?.scheduler.close();
    },
    abortAll() {
      loaded?.scheduler.abortAll();
      for (const job of imageJobs) job.abort(new ShuttingDown());
    },
    async idle() {
      await Promise.all([loaded?.scheduler.idle(), imagesIdle()]);
    },
    dispose() {
      images?.dispose();
      loaded?.scheduler.dispose();
      loaded?.drafters.dispose();
    },
  };
}
