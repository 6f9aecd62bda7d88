/**
 * One error type for everything seer refuses. `code` says what kind of
 * problem it is, so callers (the CLI, the server) can map it to an exit
 * status or an HTTP status without parsing messages; the message says what
 * is wrong and what to do about it.
 */
export type SeerErrorCode =
  | "invalid_argument" // a caller passed a bad option or value
  | "invalid_model" // a model or tokenizer file is corrupt or unsupported
  | "out_of_memory" // WASM linear memory cannot hold the request
  | "context_overflow" // the prompt or generation exceeds the context
  | "aborted" // the caller cancelled
  | "internal"; // a bug in seer

export class SeerError extends Error {
  constructor(readonly code: SeerErrorCode, message: string) {
    super(message);
    this.name = "SeerError";
  }
}
