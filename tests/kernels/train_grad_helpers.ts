/**
 * Helpers for the training-kernel tests: a scope that copies arrays into
 * WASM memory and frees them together, and a finite-difference gradient
 * check that runs the plain-TS twin in f64.
 */
import type { Runtime } from "../../src/kernels/runtime.ts";
import { assertNmse } from "../helpers.ts";

/** WASM allocations made for one test case, freed together. */
export class Scope {
  #ptrs: number[] = [];
  constructor(readonly rt: Runtime) {}

  /** Copies `data` (or allocates n zeros) as f32 and returns the pointer. */
  f32(data: ArrayLike<number> | number): number {
    const n = typeof data === "number" ? data : data.length;
    const a = this.rt.array(Float32Array, Math.max(n, 1));
    if (typeof data === "number") a.view.fill(0);
    else a.view.set(data);
    this.#ptrs.push(a.ptr);
    return a.ptr;
  }

  i32(data: ArrayLike<number>): number {
    const a = this.rt.array(Int32Array, Math.max(data.length, 1));
    a.view.set(data);
    this.#ptrs.push(a.ptr);
    return a.ptr;
  }

  read(ptr: number, n: number): Float32Array {
    return this.rt.f32(ptr, n).slice();
  }

  free(): void {
    for (const p of this.#ptrs) this.rt.free(p);
    this.#ptrs = [];
  }
}

/**
 * Numerical gradient of L(x) = Σ_i w_i · f(x)_i by central differences in
 * f64: `f` maps an f64 input to an f64 output (the twin run in f64).
 */
export function numericGrad(
  f: (x: Float64Array) => Float64Array,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  h = 1e-5,
): Float64Array {
  const xs = Float64Array.from(x);
  const g = new Float64Array(xs.length);
  const loss = () => {
    const y = f(xs);
    let s = 0;
    for (let i = 0; i < y.length; i++) s += w[i] * y[i];
    return s;
  };
  for (let i = 0; i < xs.length; i++) {
    const keep = xs[i];
    xs[i] = keep + h;
    const up = loss();
    xs[i] = keep - h;
    const down = loss();
    xs[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/**
 * An f32 kernel's gradient against central differences in f64. The f32
 * result carries relative error ~1e-6 at worst (NMSE ~1e-12) and the
 * difference quotient with h = 1e-5 a truncation error ~h² = 1e-10, so the
 * project's default NMSE bound of 1e-7 holds with a wide margin.
 */
export function assertGrad(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
): void {
  assertNmse(actual, expected, 1e-7, what);
}
