/**
 * Reading a request body defensively: at most `maxBytes` (413 beyond, before
 * reading when Content-Length already says so), within `timeoutMs` from the
 * first read (408 for slow or stalled senders, so a client that sends half
 * a body cannot hold a connection and a buffer forever), strict UTF-8 and
 * a JSON object at the top, else 400.
 */
import { ApiError } from "./errors.ts";

export interface BodyLimits {
  maxBytes: number;
  timeoutMs: number;
}

export async function readJsonObject(
  req: Request,
  limits: BodyLimits,
): Promise<Record<string, unknown>> {
  const text = await readText(req, limits);
  if (text.trim() === "") {
    throw new ApiError(
      400,
      "invalid_json",
      "the request body is empty; send a JSON object",
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ApiError(
      400,
      "invalid_json",
      `the request body is not valid JSON (${
        e instanceof Error ? e.message : e
      }); send a JSON object`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(
      400,
      "invalid_json",
      `the request body must be a JSON object, got ${
        Array.isArray(value)
          ? "an array"
          : value === null
          ? "null"
          : typeof value
      }`,
    );
  }
  return value as Record<string, unknown>;
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(
    413,
    "body_too_large",
    `the request body exceeds ${maxBytes} bytes; send a shorter prompt`,
  );
}

async function readText(req: Request, limits: BodyLimits): Promise<string> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limits.maxBytes) {
    throw tooLarge(limits.maxBytes);
  }
  if (req.body === null) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), limits.timeoutMs);
  });
  try {
    for (;;) {
      const r = await Promise.race([reader.read(), expired]);
      if (r === "timeout") {
        throw new ApiError(
          408,
          "request_timeout",
          `the request body did not arrive within ${limits.timeoutMs} ms; send it at once`,
        );
      }
      if (r.done) break;
      size += r.value.byteLength;
      if (size > limits.maxBytes) throw tooLarge(limits.maxBytes);
      chunks.push(r.value);
    }
  } catch (e) {
    // Stop reading whatever the client still sends; the error goes back.
    reader.cancel().catch(() => {});
    if (e instanceof ApiError) throw e;
    throw new ApiError(
      400,
      "invalid_body",
      `the request body could not be read (${
        e instanceof Error ? e.message : e
      })`,
    );
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(
      400,
      "invalid_encoding",
      "the request body is not valid UTF-8; encode the JSON as UTF-8",
    );
  }
}
