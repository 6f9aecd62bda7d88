/**
 * The WASM host: compiles the kernel module once, owns its linear memory
 * through an Allocator, and hands out typed views that survive growth.
 *
 *   const rt = await Runtime.load();
 *   const x = rt.array(Float32Array, 1024);   // owned block + live view
 *   rt.k.softmax_f32(x.ptr, x.ptr, 1024, 1);  // raw export, byte offsets
 *   x.view[0];                                // refreshed if memory grew
 */
import { Allocator, MAX_BYTES, WASM_PAGE } from "./allocator.ts";
import type { KernelExports } from "./exports.ts";
import { SeerError } from "../errors.ts";

export type { KernelExports };

/** Where `deno task build` writes the single-thread kernel module. */
export const DEFAULT_WASM = new URL("../../build/seer.wasm", import.meta.url);

type TypedArrayCtor =
  | Float32ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | Uint16ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor;

type TypedArrayOf<C extends TypedArrayCtor> = InstanceType<C>;

/**
 * Runs row-independent matrix products on several threads: a worker pool
 * over this runtime's shared memory (src/worker/pool.ts). `linear()` hands
 * it every product when the runtime has one. The call is synchronous and
 * returns when all rows are written, exactly as the single-thread kernel
 * would have written them.
 */
export interface RowParallel {
  /**
   * y = W x for `m` vectors: matvec_f32 / matmul_f32 (`q8 = false`) or
   * matvec_q8_0 / matmul_q8_0 on already quantized x (`q8 = true`), the
   * matvec form when m = 1, arguments as in KernelExports.
   */
  matmul(
    q8: boolean,
    y: number,
    w: number,
    x: number,
    rows: number,
    cols: number,
    m: number,
    ldy: number,
  ): void;
}

export interface LoadOptions {
  /** Compiled module, its bytes, or where to fetch them (default: build/). */
  wasm?: WebAssembly.Module | BufferSource | URL;
  /** Memory to run in (a shared one for threads); created when absent. */
  memory?: WebAssembly.Memory;
}

const moduleCache = new Map<string, Promise<WebAssembly.Module>>();

async function compile(
  source: BufferSource | URL,
): Promise<WebAssembly.Module> {
  if (!(source instanceof URL)) return await WebAssembly.compile(source);
  let cached = moduleCache.get(source.href);
  if (!cached) {
    cached = (async () => {
      let response: Response;
      try {
        response = await fetch(source);
      } catch (cause) {
        throw new SeerError(
          "internal",
          `cannot read the kernel module ${source.href}: ${cause}. Run \`deno task build\` first.`,
        );
      }
      if (!response.ok) {
        throw new SeerError(
          "internal",
          `cannot fetch the kernel module ${source.href}: HTTP ${response.status}`,
        );
      }
      return await WebAssembly.compile(await response.arrayBuffer());
    })();
    moduleCache.set(source.href, cached);
    cached.catch(() => moduleCache.delete(source.href));
  }
  return await cached;
}

/** An allocation in linear memory with a typed view that follows growth. */
export class WasmArray<C extends TypedArrayCtor> {
  #view: TypedArrayOf<C>;
  constructor(
    private readonly rt: Runtime,
    private readonly ctor: C,
    readonly ptr: number,
    readonly length: number,
  ) {
    this.#view = rt.view(ctor, ptr, length);
  }

  /** The elements; a fresh view is made only when memory has grown. */
  get view(): TypedArrayOf<C> {
    if (this.#view.buffer !== this.rt.memory.buffer) {
      this.#view = this.rt.view(this.ctor, this.ptr, this.length);
    }
    return this.#view;
  }

  get bytes(): number {
    return this.length * this.ctor.BYTES_PER_ELEMENT;
  }

  free(): void {
    this.rt.free(this.ptr);
  }
}

export class Runtime {
  readonly allocator: Allocator;
  /** Set by a worker pool that shares this memory; null = one thread. */
  parallel: RowParallel | null = null;

  private constructor(
    readonly instance: WebAssembly.Instance,
    readonly memory: WebAssembly.Memory,
    readonly module: WebAssembly.Module,
  ) {
    this.allocator = new Allocator(
      this.k.heap_base(),
      (bytes) => this.#ensure(bytes),
    );
  }

  /** Compiles (once per URL) and instantiates the kernel module. */
  static async load(options: LoadOptions = {}): Promise<Runtime> {
    const source = options.wasm ?? DEFAULT_WASM;
    const module = source instanceof WebAssembly.Module
      ? source
      : await compile(source);
    const memory = options.memory ?? new WebAssembly.Memory({ initial: 16 });
    const instance = await WebAssembly.instantiate(module, {
      env: { memory },
    });
    return new Runtime(instance, memory, module);
  }

  /** The raw kernel exports: call these on the hot path. */
  get k(): KernelExports {
    return this.instance.exports as unknown as KernelExports;
  }

  /** Allocates `bytes` bytes (aligned to 64 by default) and returns the offset. */
  alloc(bytes: number, align = 64): number {
    return this.allocator.alloc(bytes, align);
  }

  free(ptr: number): void {
    this.allocator.free(ptr);
  }

  /** Allocates `length` elements and returns them with a growth-safe view. */
  array<C extends TypedArrayCtor>(ctor: C, length: number): WasmArray<C> {
    const ptr = this.alloc(length * ctor.BYTES_PER_ELEMENT);
    return new WasmArray(this, ctor, ptr, length);
  }

  /** Allocates and fills a copy of `data`. */
  arrayFrom<C extends TypedArrayCtor>(
    ctor: C,
    data: ArrayLike<number>,
  ): WasmArray<C> {
    const a = this.array(ctor, data.length);
    a.view.set(data);
    return a;
  }

  /**
   * A view of `length` elements at byte offset `ptr`. Valid until memory
   * grows (any alloc may grow it); use WasmArray to hold on to one.
   */
  view<C extends TypedArrayCtor>(
    ctor: C,
    ptr: number,
    length: number,
  ): TypedArrayOf<C> {
    return new ctor(
      this.memory.buffer as ArrayBuffer,
      ptr,
      length,
    ) as TypedArrayOf<C>;
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer as ArrayBuffer, ptr, length);
  }

  #ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    // Grow by at least half again, to keep the number of grows logarithmic.
    const want = Math.min(
      MAX_BYTES,
      Math.max(bytes, Math.floor(have * 1.5)),
    );
    const pages = Math.ceil((want - have) / WASM_PAGE);
    try {
      this.memory.grow(pages);
    } catch {
      // The engine may refuse a large step; retry with exactly what is needed.
      try {
        this.memory.grow(Math.ceil((bytes - have) / WASM_PAGE));
      } catch (cause) {
        throw new SeerError(
          "out_of_memory",
          `WASM memory cannot grow from ${have} to ${bytes} bytes (${cause}); ` +
            `the engine's limit for this memory was reached. Use a smaller or quantized model.`,
        );
      }
    }
  }
}
