/**
 * Wraps WebAssembly.Instance so the f32 product kernels fail on demand
 * (see faulty_worker.ts). Imported before the worker so its `init` sees it.
 */
const Real = WebAssembly.Instance;

function faulty(fn: (...a: number[]) => void, colsAt: number) {
  return (...a: number[]) => {
    const cols = a[colsAt];
    if (cols === 1000) throw new Error("injected fault");
    if (cols === 1001) {
      // Never returns: a thread stuck in the middle of its chunk.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
    fn(...a);
  };
}

class FaultyInstance {
  readonly exports: WebAssembly.Exports;
  constructor(module: WebAssembly.Module, imports?: WebAssembly.Imports) {
    const real = new Real(module, imports).exports as Record<
      string,
      (...a: number[]) => void
    >;
    this.exports = {
      ...real,
      matvec_f32: faulty(real.matvec_f32, 4),
      matmul_f32: faulty(real.matmul_f32, 4),
    };
  }
}

(WebAssembly as { Instance: unknown }).Instance = FaultyInstance;
