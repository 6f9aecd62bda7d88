/**
 * The control block a worker pool and its workers share: one small
 * SharedArrayBuffer of Int32 words, read and written with Atomics. It
 * carries the per-product hand-off (the product's arguments, a claim word,
 * counters), so the hot path pays an Atomics wake-up instead of a message
 * round trip. Setup and shutdown go through comlink.
 *
 * A job is one product y = W x (RowParallel in src/kernels/runtime.ts) cut
 * into chunks of rows. Every thread, the caller included, claims chunks
 * until none is left, so a worker the OS has not scheduled yet costs
 * nothing: the others take its share. The caller waits only for chunks
 * already claimed. Each chunk is computed by the kernel the single-thread
 * path calls, and rows are independent, so the result is bit for bit the
 * same however the chunks fall.
 *
 * The claim word holds the job's number (low 16 bits of its sequence
 * number) above the count of chunks still unclaimed. A claim is a
 * compare-and-swap on it, so a thread that wakes late can only ever claim a
 * chunk of the current job, whose arguments stay put until all of its
 * chunks are finished.
 */
import type { KernelExports } from "../kernels/exports.ts";

/** Threads a pool may have, the caller included. */
export const MAX_THREADS = 64;
/** A job has at most this many chunks (the claim word's low 16 bits). */
export const MAX_CHUNKS = 0xffff;

/** Bumped by the caller to publish a job (or to wake workers to stop). */
export const SEQ = 0;
/** (job number << 16) | chunks not yet claimed. */
export const CLAIM = 1;
/** Chunks of the current job finished; the caller waits on this word. */
export const FINISHED = 2;
/** Chunks of the current job that failed (their thread is gone). */
export const FAILED = 3;
/** Non-zero: workers leave their loop. */
export const STOP = 4;
/** The job: q8 (0/1), y, w, x, rows, cols, m, ldy, chunks (pointers as u32). */
export const ARGS = 8;
/** BUSY + t: 1 while thread t computes a chunk. */
export const BUSY = 24;
/** FAIL + t: 1 when thread t failed (and left); message at msgOffset(t). */
export const FAIL = BUSY + MAX_THREADS;
const WORDS = FAIL + MAX_THREADS;
/** Bytes of error text each thread may leave. */
export const MSG_BYTES = 512;

export function controlBytes(): number {
  return WORDS * 4 + MAX_THREADS * MSG_BYTES;
}

function msgOffset(t: number): number {
  return WORDS * 4 + t * MSG_BYTES;
}

/** Leaves thread t's error message in the block (truncated, UTF-8). */
export function writeMessage(buf: SharedArrayBuffer, t: number, text: string) {
  const bytes = new TextEncoder().encode(text);
  const n = Math.min(bytes.length, MSG_BYTES - 4);
  new Uint8Array(buf, msgOffset(t) + 4, n).set(bytes.subarray(0, n));
  new DataView(buf, msgOffset(t), 4).setUint32(0, n, true);
}

export function readMessage(buf: SharedArrayBuffer, t: number): string {
  const n = new DataView(buf, msgOffset(t), 4).getUint32(0, true);
  // TextDecoder refuses views of shared memory: copy first.
  return new TextDecoder().decode(
    new Uint8Array(buf, msgOffset(t) + 4, n).slice(),
  );
}

/** Writes a job's arguments; the caller then opens it with `open`. */
export function writeJob(
  ctl: Int32Array,
  q8: boolean,
  y: number,
  w: number,
  x: number,
  rows: number,
  cols: number,
  m: number,
  ldy: number,
  chunks: number,
): void {
  ctl[ARGS] = q8 ? 1 : 0;
  ctl[ARGS + 1] = y;
  ctl[ARGS + 2] = w;
  ctl[ARGS + 3] = x;
  ctl[ARGS + 4] = rows;
  ctl[ARGS + 5] = cols;
  ctl[ARGS + 6] = m;
  ctl[ARGS + 7] = ldy;
  ctl[ARGS + 8] = chunks;
}

/**
 * Claims one chunk of the current job: its index, or -1 when none is left.
 * (Chunks are handed out from the last one down.)
 */
export function claim(ctl: Int32Array): number {
  for (;;) {
    const word = Atomics.load(ctl, CLAIM);
    const left = word & 0xffff;
    if (left === 0) return -1;
    if (Atomics.compareExchange(ctl, CLAIM, word, word - 1) === word) {
      return left - 1;
    }
  }
}

/** Computes chunk c of the job in the block. */
export function runChunk(k: KernelExports, ctl: Int32Array, c: number): void {
  const rows = ctl[ARGS + 4];
  const chunks = ctl[ARGS + 8];
  const r0 = Math.floor(rows * c / chunks);
  const r1 = Math.floor(rows * (c + 1) / chunks);
  if (r1 <= r0) return;
  const q8 = ctl[ARGS] === 1;
  const cols = ctl[ARGS + 5];
  const m = ctl[ARGS + 6];
  const ldy = ctl[ARGS + 7];
  // Pointers may pass 2 GiB: read the words as unsigned.
  const y = (ctl[ARGS + 1] >>> 0) + r0 * 4;
  const x = ctl[ARGS + 3] >>> 0;
  const rowBytes = q8 ? (cols / 32) * 34 : cols * 4;
  const w = (ctl[ARGS + 2] >>> 0) + r0 * rowBytes;
  const count = r1 - r0;
  if (q8) {
    if (m === 1) k.matvec_q8_0(y, w, x, count, cols);
    else k.matmul_q8_0(y, w, x, count, cols, m, ldy);
  } else if (m === 1) k.matvec_f32(y, w, x, count, cols);
  else k.matmul_f32(y, w, x, count, cols, m, ldy);
}

/** Counts a finished chunk; wakes the caller when it was the last. */
export function finish(ctl: Int32Array): void {
  const done = Atomics.add(ctl, FINISHED, 1) + 1;
  if (done + Atomics.load(ctl, FAILED) === ctl[ARGS + 8]) {
    Atomics.notify(ctl, FINISHED);
  }
}
