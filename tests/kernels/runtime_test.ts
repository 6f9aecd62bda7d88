import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";

Deno.test("runtime: views stay valid after memory grows", async () => {
  const rt = await Runtime.load();
  const a = rt.arrayFrom(Float32Array, [1, 2, 3]);
  const before = rt.memory.buffer.byteLength;
  const big = rt.alloc(64 << 20); // forces growth
  assert.ok(rt.memory.buffer.byteLength > before);
  assert.deepEqual([...a.view], [1, 2, 3]);
  a.view[1] = 5;
  assert.equal(rt.f32(a.ptr, 3)[1], 5);
  rt.free(big);
  a.free();
});

Deno.test("runtime: the module is compiled once per URL", async () => {
  const a = await Runtime.load();
  const b = await Runtime.load();
  assert.equal(a.module, b.module);
  assert.notEqual(a.memory, b.memory);
});
