/**
 * A pool thread (src/worker/pool.ts): instantiates the threads build of the
 * kernels over the pool's shared memory, then serves jobs from the control
 * block until told to stop. Comlink carries `init` and `run`; while `run`
 * is serving, this thread only looks at the control block.
 */
import * as Comlink from "comlink";
import type { KernelExports } from "../kernels/exports.ts";
import {
  BUSY,
  claim,
  FAIL,
  FAILED,
  finish,
  FINISHED,
  runChunk,
  SEQ,
  STOP,
  writeMessage,
} from "./control.ts";

interface State {
  k: KernelExports;
  control: SharedArrayBuffer;
  ctl: Int32Array;
  t: number;
}

let state: State | undefined;

export interface KernelWorker {
  /** Instantiates the kernels; this is thread t (1..). */
  init(
    module: WebAssembly.Module,
    memory: WebAssembly.Memory,
    control: SharedArrayBuffer,
    t: number,
  ): void;
  /**
   * Serves jobs published after job `seen` until STOP: claims and
   * computes chunks while there are any. Between jobs it spins for
   * `spinMs` (in a forward pass the next product follows within
   * microseconds) before sleeping in Atomics.wait. A failing chunk is
   * reported in the control block, then ends the loop by throwing.
   */
  run(seen: number, spinMs: number): void;
}

const api: KernelWorker = {
  init(module, memory, control, t) {
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    state = {
      k: instance.exports as unknown as KernelExports,
      control,
      ctl: new Int32Array(control),
      t,
    };
  },

  run(seen, spinMs) {
    if (!state) throw new Error("kernel worker: run() before init()");
    const { k, ctl, t, control } = state;
    for (;;) {
      let seq = Atomics.load(ctl, SEQ);
      if (seq === seen) {
        const until = performance.now() + spinMs;
        while (
          (seq = Atomics.load(ctl, SEQ)) === seen && performance.now() < until
        );
      }
      if (seq === seen) {
        Atomics.wait(ctl, SEQ, seen);
        continue;
      }
      seen = seq;
      if (Atomics.load(ctl, STOP) !== 0) return;
      for (let c = claim(ctl); c >= 0; c = claim(ctl)) {
        Atomics.store(ctl, BUSY + t, 1);
        try {
          runChunk(k, ctl, c);
        } catch (e) {
          const why = e instanceof Error
            ? `${e.name}: ${e.message}`
            : String(e);
          writeMessage(control, t, why);
          Atomics.store(ctl, FAIL + t, 1);
          Atomics.add(ctl, FAILED, 1);
          Atomics.notify(ctl, FINISHED);
          throw e;
        }
        Atomics.store(ctl, BUSY + t, 0);
        finish(ctl);
      }
    }
  },
};

Comlink.expose(api);
