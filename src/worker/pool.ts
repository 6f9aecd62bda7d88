/**
 * A pool of kernel threads over one shared WebAssembly memory. The calling
 * thread is thread 0; `threads - 1` workers run the threads build of the
 * same kernels in the same memory. Every matrix product that goes through
 * `linear()` is cut into chunks of rows: the caller publishes it in the
 * control block (src/worker/control.ts), wakes the workers with Atomics,
 * and every thread claims chunks until none is left; the caller then waits
 * only for chunks still being computed. Comlink carries setup and shutdown.
 *
 *   const pool = await ThreadPool.create({ threads: 2 });
 *   const engine = await Engine.load({ runtime: pool.runtime });
 *   …
 *   engine.dispose();
 *   await pool.dispose();
 *
 * Outputs are bit for bit those of one thread: each row is computed by the
 * same kernel whoever computes it. A worker that fails while computing (a
 * trap, an exception, or no answer within `timeoutMs`) fails the product in
 * flight with a clear SeerError and is replaced in the background
 * (`ready()` resolves when the replacement serves); meanwhile the others do
 * its share. (A worker only leaves its loop when told to stop or when it
 * fails, so an idle worker cannot vanish unnoticed; and Deno's
 * Worker.terminate() does not stop a thread that is inside a synchronous
 * loop, so a stuck thread is abandoned, not killed.)
 */
import * as Comlink from "comlink";
import { type RowParallel, Runtime } from "../kernels/runtime.ts";
import { SeerError } from "../errors.ts";
import {
  BUSY,
  CLAIM,
  claim,
  controlBytes,
  FAIL,
  FAILED,
  finish,
  FINISHED,
  MAX_CHUNKS,
  MAX_THREADS,
  readMessage,
  runChunk,
  SEQ,
  STOP,
  writeJob,
} from "./control.ts";
import type { KernelWorker } from "./kernel_worker.ts";

/** Where `deno task build` writes the shared-memory kernel module. */
export const THREADS_WASM = new URL(
  "../../build/seer-threads.wasm",
  import.meta.url,
);
const WORKER_URL = new URL("./kernel_worker.ts", import.meta.url);
/** The threads build declares this maximum (asconfig.json), 4 GiB. */
const MAX_PAGES = 65536;

export interface PoolOptions {
  /** Threads in all, the calling one included (1 = no workers). */
  threads: number;
  /** The threads build of the kernels (default build/seer-threads.wasm). */
  wasm?: WebAssembly.Module | BufferSource | URL;
  /** The worker script (default kernel_worker.ts; a bundle in browsers). */
  workerUrl?: URL;
  /** How long the caller waits for a worker's rows before declaring it dead. */
  timeoutMs?: number;
  /**
   * How long a thread spins for the next product, or for the last chunks,
   * before it sleeps. Spinning saves the ≈ 5 µs futex wake-up of each
   * product in a forward pass; keeping it short keeps a spinner from
   * holding a core another thread of ours is waiting for.
   */
  spinMs?: number;
  /**
   * Products of fewer multiply-adds (rows · cols · m) run on the caller
   * alone: below this the hand-off costs more than it saves.
   */
  minWork?: number;
  /**
   * Chunks per thread in a split product (default 4). More chunks balance
   * better when a worker is preempted (the caller waits at most for one
   * chunk it holds); fewer cost fewer claims.
   */
  chunksPerThread?: number;
}

/** Whether this runtime can share memory between threads. */
export function sharedMemoryAvailable(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  // Browsers expose SharedArrayBuffer only to cross-origin isolated pages;
  // runtimes without the notion (Deno) leave it undefined.
  const isolated = (globalThis as { crossOriginIsolated?: boolean })
    .crossOriginIsolated;
  if (isolated === false) return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

interface Slot {
  worker: Worker | null;
  /** Serving jobs (or about to: the run message is on its way). */
  live: boolean;
  /** The loop's promise (settles when the worker stops or fails). */
  running: Promise<void> | null;
}

export class ThreadPool implements RowParallel {
  readonly ctl: Int32Array;
  /** Products handed to the threads, and those small enough to run alone. */
  readonly counts = { split: 0, alone: 0 };
  #slots: Slot[] = [];
  #seq = 0;
  #starting = new Set<Promise<void>>();
  #disposed = false;
  readonly #timeoutMs: number;
  readonly #spinMs: number;
  readonly #minWork: number;
  readonly #chunksPerThread: number;
  readonly #workerUrl: URL;

  private constructor(
    readonly runtime: Runtime,
    readonly threads: number,
    readonly control: SharedArrayBuffer,
    options: PoolOptions,
  ) {
    this.ctl = new Int32Array(control);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#spinMs = options.spinMs ?? 0.05;
    this.#minWork = options.minWork ?? 1 << 16;
    this.#chunksPerThread = Math.max(1, options.chunksPerThread ?? 4);
    this.#workerUrl = options.workerUrl ?? WORKER_URL;
  }

  /** Compiles the threads build, makes the shared memory, starts the workers. */
  static async create(options: PoolOptions): Promise<ThreadPool> {
    const { threads } = options;
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new SeerError(
        "invalid_argument",
        `threads must be an integer from 1 to ${MAX_THREADS}, got ${threads}`,
      );
    }
    if (!sharedMemoryAvailable()) {
      throw new SeerError(
        "invalid_argument",
        `${threads} threads need shared memory (SharedArrayBuffer), which this runtime does not offer; ` +
          `in a browser the page must be cross-origin isolated (COOP/COEP headers). Use 1 thread.`,
      );
    }
    for (
      const [name, v] of Object.entries({
        timeoutMs: options.timeoutMs,
        spinMs: options.spinMs,
        minWork: options.minWork,
        chunksPerThread: options.chunksPerThread,
      })
    ) {
      if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
        throw new SeerError(
          "invalid_argument",
          `${name} must be a non-negative finite number, got ${v}`,
        );
      }
    }
    const memory = new WebAssembly.Memory({
      initial: 16,
      maximum: MAX_PAGES,
      shared: true,
    });
    const runtime = await Runtime.load({
      wasm: options.wasm ?? THREADS_WASM,
      memory,
    });
    const control = new SharedArrayBuffer(controlBytes());
    const pool = new ThreadPool(runtime, threads, control, options);
    pool.#slots = Array.from({ length: threads }, () => ({
      worker: null,
      live: false,
      running: null,
    }));
    try {
      await Promise.all(
        pool.#slots.map((_, t) => t === 0 ? undefined : pool.#start(t)),
      );
    } catch (e) {
      await pool.dispose();
      throw e;
    }
    if (threads > 1) runtime.parallel = pool;
    return pool;
  }

  /** Workers serving jobs now (a failed one is back once restarted). */
  get liveWorkers(): number {
    return this.#slots.filter((s) => s.live).length;
  }

  /** The worker behind thread t (1..threads-1), for diagnostics and tests. */
  worker(t: number): Worker | null {
    return this.#slots[t]?.worker ?? null;
  }

  /** Resolves when every worker is serving (after a restart, say). */
  async ready(): Promise<void> {
    while (this.#starting.size) await Promise.all(this.#starting);
  }

  matmul(
    q8: boolean,
    y: number,
    w: number,
    x: number,
    rows: number,
    cols: number,
    m: number,
    ldy: number,
  ): void {
    if (this.#disposed) {
      throw new SeerError("internal", "this thread pool was disposed");
    }
    const ctl = this.ctl;
    const k = this.runtime.k;
    // A few chunks per thread: late or preempted threads leave theirs to
    // the others, and the caller waits at most for one chunk's time.
    const chunks = rows * cols * m < this.#minWork
      ? 1
      : Math.min(rows, this.threads * this.#chunksPerThread, MAX_CHUNKS);
    writeJob(ctl, q8, y, w, x, rows, cols, m, ldy, chunks);
    if (chunks === 1) {
      this.counts.alone++;
      runChunk(k, ctl, 0);
      return;
    }
    this.counts.split++;
    // Job numbers wrap within int32 (the SEQ word); workers only compare.
    const seq = this.#seq = (this.#seq + 1) | 0;
    Atomics.store(ctl, FINISHED, 0);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(ctl, CLAIM, ((seq & 0xffff) << 16) | chunks);
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    let ownError: unknown = null;
    for (let c = claim(ctl); c >= 0; c = claim(ctl)) {
      try {
        runChunk(k, ctl, c);
      } catch (e) {
        // Counted as finished so the wait below ends; rethrown after it.
        ownError ??= e;
      }
      finish(ctl);
    }
    // Wait even when this thread failed: no worker may still be writing
    // when the caller moves on.
    const failed = this.#wait(chunks);
    if (ownError) throw ownError;
    if (failed.length) {
      const what = failed.map(({ t, why }) =>
        t ? `worker ${t}: ${why}` : `a worker that left: ${why}`
      ).join("; ");
      throw new SeerError(
        "internal",
        `a kernel thread failed (${what}), so this result is incomplete; ` +
          `the pool is starting a replacement and the other threads cover for it meanwhile: retry the request`,
      );
    }
  }

  /** Waits until every claimed chunk is finished or failed; returns the failures. */
  #wait(chunks: number): { t: number; why: string }[] {
    const ctl = this.ctl;
    const start = performance.now();
    const spinUntil = start + this.#spinMs;
    const deadline = start + this.#timeoutMs;
    for (;;) {
      const finished = Atomics.load(ctl, FINISHED);
      if (finished + Atomics.load(ctl, FAILED) === chunks) break;
      const now = performance.now();
      if (now >= deadline) {
        // Whoever still holds a chunk is stuck (or dead): take it out. The
        // product is incomplete either way.
        const stuck: { t: number; why: string }[] = [];
        const why = `no answer within ${this.#timeoutMs} ms (crashed or stuck)`;
        for (let t = 1; t < this.threads; t++) {
          if (Atomics.load(ctl, BUSY + t) === 1) {
            stuck.push({ t, why });
            if (this.#slots[t].live) this.#lose(t);
          }
        }
        return stuck.length ? stuck : [{ t: 0, why }];
      }
      if (now < spinUntil) continue;
      Atomics.wait(ctl, FINISHED, finished, Math.min(50, deadline - now));
    }
    if (Atomics.load(ctl, FAILED) === 0) return [];
    const failed: { t: number; why: string }[] = [];
    for (let t = 1; t < this.threads; t++) {
      if (this.#slots[t].live && Atomics.load(ctl, FAIL + t) !== 0) {
        failed.push({ t, why: readMessage(this.control, t) });
        this.#lose(t);
      }
    }
    return failed;
  }

  /** Takes thread t out of service and starts a replacement. */
  #lose(t: number): void {
    const slot = this.#slots[t];
    slot.live = false;
    slot.worker?.terminate();
    slot.worker = null;
    if (this.#disposed) return;
    const starting = this.#start(t).catch(() => {
      // Left down: the other threads keep doing its share.
    });
    this.#starting.add(starting);
    starting.finally(() => this.#starting.delete(starting));
  }

  async #start(t: number): Promise<void> {
    const worker = new Worker(this.#workerUrl, { type: "module" });
    const slot = this.#slots[t];
    slot.worker = worker;
    // An uncaught error in a worker would otherwise end the whole process;
    // before init answers it means the worker could not start at all.
    let startFailed: (e: Error) => void = () => {};
    const notStarted = new Promise<never>((_, reject) => startFailed = reject);
    worker.addEventListener("error", (e) => {
      e.preventDefault();
      startFailed(
        new SeerError(
          "internal",
          `kernel worker ${t} could not start from ${this.#workerUrl.href}: ${
            e.message || "the script failed to load"
          }`,
        ),
      );
      if (slot.worker === worker && slot.live) this.#lose(t);
    });
    const api = Comlink.wrap<KernelWorker>(worker);
    try {
      await Promise.race([
        api.init(this.runtime.module, this.runtime.memory, this.control, t),
        notStarted,
      ]);
    } catch (e) {
      worker.terminate();
      if (slot.worker === worker) slot.worker = null;
      throw e;
    }
    if (this.#disposed || slot.worker !== worker) {
      worker.terminate();
      return;
    }
    Atomics.store(this.ctl, FAIL + t, 0);
    Atomics.store(this.ctl, BUSY + t, 0);
    slot.running = api.run(this.#seq, this.#spinMs).catch(() => {
      // Reported through the control block when it matters (see #wait).
    });
    slot.live = true;
  }

  /** Stops and ends the workers; the runtime goes back to one thread. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.runtime.parallel === this) this.runtime.parallel = null;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.store(this.ctl, SEQ, (this.#seq + 1) | 0);
    Atomics.notify(this.ctl, SEQ);
    const running = this.#slots.map((s) => s.running).filter((p) => p);
    // A worker that does not stop within a second is ended anyway.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all(running),
      new Promise((r) => timer = setTimeout(r, 1000)),
    ]);
    clearTimeout(timer);
    for (const slot of this.#slots) {
      slot.live = false;
      slot.worker?.terminate();
      slot.worker = null;
    }
    await Promise.all(this.#starting);
  }
}
