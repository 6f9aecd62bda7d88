/**
 * Every refusal the server sends is an OpenAI error object,
 * `{ error: { message, type, param, code } }`, with the HTTP status that
 * says whose fault it is. Handlers throw ApiError (or the engine throws a
 * SeerError); the app's one onError turns either into a response, so no
 * route builds error bodies by hand.
 */
import { SeerError } from "../errors.ts";

/** The statuses the server refuses with (a subset Hono's types accept). */
export type ErrorStatus =
  | 400
  | 401
  | 404
  | 405
  | 408
  | 413
  | 429
  | 499
  | 500
  | 503;

export interface ErrorBody {
  error: {
    message: string;
    type: string;
    param: string | null;
    code: string;
  };
}

export class ApiError extends Error {
  constructor(
    readonly status: ErrorStatus,
    /** Machine-readable reason, e.g. "invalid_value", "queue_full". */
    readonly code: string,
    message: string,
    /** The request field at fault, when there is one. */
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** OpenAI's error `type`, derived from the status as OpenAI does. */
  get type(): string {
    if (this.status === 401) return "authentication_error";
    if (this.status === 429) return "rate_limit_error";
    if (this.status >= 500) return "server_error";
    return "invalid_request_error";
  }

  toJSON(): ErrorBody {
    return {
      error: {
        message: this.message,
        type: this.type,
        param: this.param,
        code: this.code,
      },
    };
  }
}

/** A 400 naming the request field at fault. */
export function invalid(param: string, message: string): ApiError {
  return new ApiError(400, "invalid_value", message, param);
}

/**
 * Maps anything a handler threw to an ApiError: the engine's bad-input
 * codes are the client's fault (400), everything else is ours (500, with a
 * generic message: internals are logged, not sent).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof SeerError) {
    if (err.code === "invalid_argument") {
      return new ApiError(400, "invalid_value", err.message);
    }
    if (err.code === "context_overflow") {
      return new ApiError(
        400,
        "context_length_exceeded",
        err.message,
        "prompt",
      );
    }
    if (err.code === "aborted") {
      return new ApiError(499, "client_closed_request", err.message);
    }
  }
  return new ApiError(
    500,
    "internal_error",
    "the server failed while handling this request; see its log",
  );
}
