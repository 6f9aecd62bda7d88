/**
 * A small allocator for WASM linear memory: a bump arena with a free list.
 * The kernels never allocate; the host owns the layout and hands them
 * offsets. Freed blocks are kept sorted by address and merged with their
 * neighbours, so a model that is loaded, freed and loaded again reuses the
 * same space instead of growing memory.
 */
import { SeerError } from "../errors.ts";

interface Block {
  start: number;
  size: number;
}

/** WASM32 can address 4 GiB; memory.grow counts 64 KiB pages. */
export const WASM_PAGE = 65536;
export const MAX_BYTES = 65536 * WASM_PAGE;

export class Allocator {
  #top: number;
  #free: Block[] = [];
  #live = new Map<number, number>();

  /**
   * @param base first usable byte (after the module's static data)
   * @param grow called with the byte size memory must reach
   *   (throws when it cannot)
   */
  constructor(base: number, private readonly grow: (bytes: number) => void) {
    this.#top = base;
  }

  /** Bytes handed out and not yet freed. */
  get liveBytes(): number {
    let total = 0;
    for (const size of this.#live.values()) total += size;
    return total;
  }

  /** End of the arena: the highest byte ever handed out. */
  get top(): number {
    return this.#top;
  }

  /** Returns the offset of `bytes` bytes aligned to `align` (a power of 2). */
  alloc(bytes: number, align = 64): number {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new SeerError(
        "invalid_argument",
        `alloc: size must be a non-negative integer, got ${bytes}`,
      );
    }
    const size = Math.max(align, roundUp(bytes, align));
    for (let i = 0; i < this.#free.length; i++) {
      const block = this.#free[i];
      const start = roundUp(block.start, align);
      const waste = start - block.start;
      if (block.size < waste + size) continue;
      // Split: keep the alignment gap and the remainder on the free list.
      const rest = block.size - waste - size;
      const pieces: Block[] = [];
      if (waste > 0) pieces.push({ start: block.start, size: waste });
      if (rest > 0) pieces.push({ start: start + size, size: rest });
      this.#free.splice(i, 1, ...pieces);
      this.#live.set(start, size);
      return start;
    }
    const start = roundUp(this.#top, align);
    const end = start + size;
    if (end > MAX_BYTES) {
      throw new SeerError(
        "out_of_memory",
        `cannot allocate ${formatBytes(bytes)}: WASM memory would reach ${
          formatBytes(end)
        }, beyond WebAssembly's 4 GiB limit (${
          formatBytes(this.liveBytes)
        } in use). Use a smaller or quantized model (--quant q8_0) or a shorter context.`,
      );
    }
    this.grow(end);
    if (start > this.#top) {
      this.#insertFree({ start: this.#top, size: start - this.#top });
    }
    this.#top = end;
    this.#live.set(start, size);
    return start;
  }

  /** Returns a block from `alloc` to the free list. Freeing 0 is a no-op. */
  free(ptr: number): void {
    if (ptr === 0) return;
    const size = this.#live.get(ptr);
    if (size === undefined) {
      throw new SeerError(
        "internal",
        `free: ${ptr} is not a live allocation (double free?)`,
      );
    }
    this.#live.delete(ptr);
    this.#insertFree({ start: ptr, size });
  }

  #insertFree(block: Block): void {
    const list = this.#free;
    let i = 0;
    while (i < list.length && list[i].start < block.start) i++;
    list.splice(i, 0, block);
    // Merge with the next block, then with the previous one.
    if (i + 1 < list.length && block.start + block.size === list[i + 1].start) {
      block.size += list[i + 1].size;
      list.splice(i + 1, 1);
    }
    if (i > 0 && list[i - 1].start + list[i - 1].size === block.start) {
      list[i - 1].size += block.size;
      list.splice(i, 1);
      i--;
    }
    // A free block that ends at the top shrinks the arena instead.
    const last = list[list.length - 1];
    if (last && last.start + last.size === this.#top) {
      this.#top = last.start;
      list.pop();
    }
  }
}

function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
