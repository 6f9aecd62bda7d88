/**
 * The image layer's noise: the WASM PRNG (xoshiro128**, see
 * src/kernels/exports.ts) with a scratch buffer. Every random number of
 * training and sampling comes from here, so a seed reproduces a run, and the
 * 16-byte state can be saved in a checkpoint and restored.
 */
import type { Runtime } from "../kernels/runtime.ts";

export class Rng {
  readonly state: number;
  #buf = 0;
  #cap = 0;

  constructor(readonly rt: Runtime, seed: number) {
    this.state = rt.alloc(16, 16);
    this.reseed(seed);
  }

  reseed(seed: number): void {
    // Seeds up to 2^53: split into the two 32-bit halves the kernel takes.
    const lo = seed >>> 0, hi = Math.floor(seed / 2 ** 32) >>> 0;
    this.rt.k.rng_seed(this.state, lo, hi);
  }

  #scratch(n: number): number {
    if (n > this.#cap) {
      if (this.#buf) this.rt.free(this.#buf);
      this.#cap = Math.max(n, 1024);
      this.#buf = this.rt.alloc(this.#cap * 4);
    }
    return this.#buf;
  }

  /** n standard normal floats (copied out of WASM memory). */
  normal(n: number): Float32Array {
    const p = this.#scratch(n);
    this.rt.k.rng_normal_f32(this.state, p, n, 0, 1);
    return this.rt.f32(p, n).slice();
  }

  /** n floats uniform in [0, 1). */
  uniform(n: number): Float32Array {
    const p = this.#scratch(n);
    this.rt.k.rng_uniform_f32(this.state, p, n);
    return this.rt.f32(p, n).slice();
  }

  /** An integer uniform in [0, n) (n ≤ 2^32), by rejection, without bias. */
  int(n: number): number {
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const u = this.rt.k.rng_next_u32(this.state) >>> 0;
      if (u < limit) return u % n;
    }
  }

  getState(): Uint8Array {
    return this.rt.view(Uint8Array, this.state, 16).slice();
  }

  setState(bytes: Uint8Array): void {
    this.rt.view(Uint8Array, this.state, 16).set(bytes);
  }

  free(): void {
    this.rt.free(this.state);
    if (this.#buf) this.rt.free(this.#buf);
  }
}
