/**
 * Slots and a bounded queue in front of the model. Each slot is an engine
 * fork (same weights, its own KV cache), so up to `slots` generations run
 * at once; the rest wait in a FIFO queue of at most `maxQueue`, and beyond
 * that a request is refused at once (429) rather than left to time out.
 *
 * Generation is synchronous (no await per token), so one driver loop
 * interleaves the active generations round-robin, one token each, and
 * yields to the event loop between rounds (see eventLoopTurn for how
 * often and how): new requests, client disconnects and /metrics are served
 * while the model works, streamed tokens flow out at least every
 * `flushMs`, and a cancelled generation stops at the next round after the
 * server hears of it.
 */
import type { Engine, GenerateResult } from "../engine.ts";
import type { TokenEvent } from "../generate/decoder.ts";
import { ApiError } from "./errors.ts";

export interface Job {
  /** Starts the generation on a slot's engine (called once a slot is free). */
  start(engine: Engine): Generator<TokenEvent, GenerateResult, void>;
  onToken(event: TokenEvent): void;
  onDone(result: GenerateResult): void;
  /** Failed, or given up while queued (aborted, deadline). */
  onError(error: unknown): void;
  /** Aborting it stops the generation between tokens or drops it from the queue. */
  controller: AbortController;
  /** performance.now() after which the job is aborted with a DeadlineExceeded. */
  deadline: number;
}

/** The abort reason a job gets when its deadline passes. */
export class DeadlineExceeded extends Error {
  constructor() {
    super("the request's deadline passed");
    this.name = "DeadlineExceeded";
  }
}

/** The abort reason abortAll gives by default. */
export class ShuttingDown extends Error {
  constructor() {
    super("the server is shutting down");
    this.name = "ShuttingDown";
  }
}

interface Active {
  job: Job;
  slot: number;
  gen: Generator<TokenEvent, GenerateResult, void>;
}

export interface SchedulerOptions {
  slots: number;
  maxQueue: number;
  /** Seconds a refused client should wait (Retry-After). */
  retryAfter?: number;
  /** The cheap turn between rounds (default eventLoopTurn; tests slow it down). */
  turn?: () => Promise<void>;
  /** Compute between cheap turns, in ms: 0 = after every round (default 2). */
  sliceMs?: number;
  /** Time between full turns (setTimeout), in ms (default 10). */
  flushMs?: number;
  /** Called with errors a job callback threw (a server bug, never the client's). */
  log?: (message: string, error: unknown) => void;
}

const ONE_BYTE = new Uint8Array(1);

/**
 * Yielding to the event loop, as measured on Deno 2.9 (bench/server.ts and
 * a probe streaming 32 tokens of a 15M model to an outside client):
 * - a MessageChannel round trip (≈ 7 µs) runs JS tasks only: no new
 *   connection was accepted until every generation had finished;
 * - awaiting a digest (computed on the runtime's blocking thread pool)
 *   really idles the loop for ≈ 0.1 ms: connections are accepted, but a
 *   streamed body still reached the client only at the end (12 of 12);
 * - setTimeout(0) lets everything run, streamed tokens included, but costs
 *   ≈ 2 ms (timer clamping): every token would make a small model 2-6×
 *   slower.
 * So the driver takes the cheap turn (this one) after `sliceMs` of
 * compute and a full one (setTimeout) after `flushMs` and after a new
 * job's first token, which cost 10-20 % of tokens/s against no yielding
 * at all in the probe, within the machine's noise.
 */
export function eventLoopTurn(): Promise<void> {
  return crypto.subtle.digest("SHA-256", ONE_BYTE).then(() => {});
}

/** A turn in which timers, sockets and streamed responses all make progress. */
export function fullTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Compute between cheap turns, in ms (a turn costs about a built-in-model token). */
export const DEFAULT_SLICE_MS = 2;
/** Time between full turns, in ms: the cadence of streamed chunks under load. */
export const DEFAULT_FLUSH_MS = 10;

export class Scheduler {
  readonly #engines: (Engine | undefined)[];
  readonly #free: number[];
  readonly #queue: Job[] = [];
  readonly #active: Active[] = [];
  readonly #unqueue = new Map<Job, () => void>();
  #driving = false;
  /** A job started since the last full turn. */
  #started = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(readonly base: Engine, readonly options: SchedulerOptions) {
    if (!Number.isInteger(options.slots) || options.slots < 1) {
      throw new RangeError(
        `slots must be an integer ≥ 1, got ${options.slots}`,
      );
    }
    if (!Number.isInteger(options.maxQueue) || options.maxQueue < 0) {
      throw new RangeError(
        `maxQueue must be an integer ≥ 0, got ${options.maxQueue}`,
      );
    }
    this.#engines = new Array(options.slots).fill(undefined);
    this.#free = [...Array(options.slots).keys()].reverse();
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  get busySlots(): number {
    return this.#active.length;
  }

  get slots(): number {
    return this.options.slots;
  }

  /** Runs the job now, queues it, or refuses it (429 full, 503 closed). */
  submit(job: Job): void {
    if (this.#closed) {
      throw new ApiError(
        503,
        "shutting_down",
        "the server is shutting down; retry on another instance",
      );
    }
    if (job.controller.signal.aborted) {
      job.onError(job.controller.signal.reason);
      return;
    }
    if (this.#free.length > 0 && this.#queue.length === 0) {
      this.#activate(job, this.#free.pop()!);
      return;
    }
    if (this.#queue.length >= this.options.maxQueue) {
      const retry = String(this.options.retryAfter ?? 1);
      throw new ApiError(
        429,
        "queue_full",
        `all ${this.options.slots} slots are busy and ${this.options.maxQueue} requests are waiting; retry after ${retry} s`,
        null,
        { "Retry-After": retry },
      );
    }
    this.#queue.push(job);
    // A client that leaves while waiting frees its place at once.
    const onAbort = () => this.#drop(job);
    job.controller.signal.addEventListener("abort", onAbort, { once: true });
    this.#unqueue.set(
      job,
      () => job.controller.signal.removeEventListener("abort", onAbort),
    );
  }

  /** Refuses new jobs from now on; queued and running ones continue. */
  close(): void {
    this.#closed = true;
  }

  /** Aborts every queued and running job (each gets its callbacks). */
  abortAll(reason: unknown = new ShuttingDown()): void {
    for (const job of [...this.#queue]) job.controller.abort(reason);
    for (const a of this.#active) a.job.controller.abort(reason);
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    if (this.#active.length === 0 && this.#queue.length === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Frees the slot engines (forks); the base engine is the caller's. */
  dispose(): void {
    for (const e of this.#engines) e?.dispose();
    this.#engines.fill(undefined);
  }

  #activate(job: Job, slot: number): void {
    const engine = this.#engines[slot] ??= this.base.fork();
    let gen: Generator<TokenEvent, GenerateResult, void>;
    try {
      gen = job.start(engine);
    } catch (e) {
      this.#free.push(slot);
      this.#safely(() => job.onError(e));
      this.#next();
      return;
    }
    this.#active.push({ job, slot, gen });
    this.#started = true;
    if (!this.#driving) this.#drive();
  }

  async #drive(): Promise<void> {
    this.#driving = true;
    const turn = this.options.turn ?? eventLoopTurn;
    const slice = this.options.sliceMs ?? DEFAULT_SLICE_MS;
    const flush = this.options.flushMs ?? DEFAULT_FLUSH_MS;
    try {
      // Turn first: jobs submitted in the same tick join the first round.
      await turn();
      let lastTurn = performance.now();
      let lastFlush = -Infinity;
      while (this.#active.length > 0) {
        const now = performance.now();
        // Aborting removes a job from the queue: walk a copy.
        for (const job of [...this.#queue]) {
          if (now > job.deadline) job.controller.abort(new DeadlineExceeded());
        }
        for (const a of [...this.#active]) this.#step(a, now);
        if (this.#active.length === 0) break;
        const t = performance.now();
        if (this.#started || t - lastFlush >= flush) {
          // A new job's first token goes out at once: time to first token.
          this.#started = false;
          await fullTurn();
          lastFlush = lastTurn = performance.now();
        } else if (t - lastTurn >= slice) {
          await turn();
          lastTurn = performance.now();
        }
      }
    } finally {
      this.#driving = false;
      this.#notifyIdle();
    }
  }

  #step(a: Active, now: number): void {
    const { job } = a;
    if (now > job.deadline && !job.controller.signal.aborted) {
      job.controller.abort(new DeadlineExceeded());
    }
    let r: IteratorResult<TokenEvent, GenerateResult>;
    try {
      r = a.gen.next();
    } catch (e) {
      this.#finish(a);
      this.#safely(() => job.onError(e));
      return;
    }
    if (r.done) {
      this.#finish(a);
      this.#safely(() => job.onDone(r.value));
    } else {
      this.#safely(() => job.onToken(r.value));
    }
  }

  #finish(a: Active): void {
    this.#active.splice(this.#active.indexOf(a), 1);
    this.#free.push(a.slot);
    this.#next();
  }

  /** Hands free slots to queued jobs, oldest first. */
  #next(): void {
    while (this.#free.length > 0 && this.#queue.length > 0) {
      const job = this.#queue[0];
      if (job.controller.signal.aborted || performance.now() > job.deadline) {
        // Too late to start: dropped with the reason, never run.
        if (!job.controller.signal.aborted) {
          job.controller.abort(new DeadlineExceeded());
        }
        this.#drop(job);
        continue;
      }
      this.#queue.shift();
      this.#unqueue.get(job)?.();
      this.#unqueue.delete(job);
      this.#activate(job, this.#free.pop()!);
    }
    this.#notifyIdle();
  }

  /** Takes a queued job out (aborted or expired) and tells it why. */
  #drop(job: Job): void {
    const i = this.#queue.indexOf(job);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    this.#unqueue.get(job)?.();
    this.#unqueue.delete(job);
    this.#safely(() => job.onError(job.controller.signal.reason));
    this.#notifyIdle();
  }

  #notifyIdle(): void {
    if (this.#active.length > 0 || this.#queue.length > 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #safely(f: () => void): void {
    try {
      f();
    } catch (e) {
      this.options.log?.("a job callback failed", e);
    }
  }
}
