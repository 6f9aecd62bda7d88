import assert from "node:assert/strict";
import { Allocator, MAX_BYTES } from "../../src/kernels/allocator.ts";
import { SeerError } from "../../src/errors.ts";

function arena(base = 1024) {
  let size = 0;
  const a = new Allocator(base, (bytes) => {
    size = Math.max(size, bytes);
  });
  return { a, size: () => size };
}

Deno.test("allocator: aligned, non-overlapping blocks", () => {
  const { a } = arena(1000);
  const blocks: [number, number][] = [];
  for (const [bytes, align] of [[1, 16], [100, 64], [0, 16], [4096, 4096]]) {
    const p = a.alloc(bytes, align);
    assert.equal(p % align, 0);
    assert.ok(p >= 1000);
    blocks.push([p, Math.max(bytes, 1)]);
  }
  blocks.sort((x, y) => x[0] - y[0]);
  for (let i = 1; i < blocks.length; i++) {
    assert.ok(blocks[i - 1][0] + blocks[i - 1][1] <= blocks[i][0]);
  }
});

Deno.test("allocator: freed space is reused and merged", () => {
  const { a } = arena();
  const p1 = a.alloc(1024);
  const p2 = a.alloc(1024);
  const p3 = a.alloc(1024);
  a.free(p1);
  a.free(p2);
  // p1 and p2 merged: a 2048-byte request fits where they were.
  assert.equal(a.alloc(2048), p1);
  a.free(p3);
  assert.equal(a.liveBytes, 2048);
});

Deno.test("allocator: freeing the top shrinks the arena", () => {
  const { a } = arena();
  const top0 = a.top;
  const p = a.alloc(1 << 20);
  assert.ok(a.top > top0);
  a.free(p);
  assert.equal(a.top, top0);
});

Deno.test("allocator: double free is reported", () => {
  const { a } = arena();
  const p = a.alloc(64);
  a.free(p);
  assert.throws(() => a.free(p), /not a live allocation/);
});

Deno.test("allocator: beyond 4 GiB is a clear out_of_memory error", () => {
  const { a } = arena();
  a.alloc(3 * 2 ** 30);
  assert.throws(
    () => a.alloc(2 ** 30 + 1),
    (e: unknown) =>
      e instanceof SeerError && e.code === "out_of_memory" &&
      /4 GiB/.test(e.message),
  );
  assert.throws(() => a.alloc(MAX_BYTES + 1), /4 GiB/);
});

Deno.test("allocator: bad sizes are refused", () => {
  const { a } = arena();
  assert.throws(() => a.alloc(-1), /non-negative integer/);
  assert.throws(() => a.alloc(1.5), /non-negative integer/);
});
