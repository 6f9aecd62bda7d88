/**
 * The host's handle on a WASM PRNG stream (xoshiro128**, state in linear
 * memory). Every random decision in generation draws from one of these, so
 * a seed reproduces a run exactly.
 */
import type { Runtime } from "../kernels/runtime.ts";
import { SeerError } from "../errors.ts";

export class Rng {
  readonly #state: number;
  readonly #out: number;

  constructor(private readonly rt: Runtime, seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new SeerError(
        "invalid_argument",
        `seed must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${seed}`,
      );
    }
    this.#state = rt.alloc(16, 16);
    this.#out = rt.alloc(4, 16);
    rt.k.rng_seed(this.#state, seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0);
  }

  /** A uniform float in [0, 1). */
  uniform(): number {
    this.rt.k.rng_uniform_f32(this.#state, this.#out, 1);
    return this.rt.f32(this.#out, 1)[0];
  }

  /** Byte offset of the 16-byte state, for kernels that draw directly. */
  get statePtr(): number {
    return this.#state;
  }

  dispose(): void {
    this.rt.free(this.#state);
    this.rt.free(this.#out);
  }
}
