/**
 * The worker pool against one thread: every split product, and whole
 * forward passes and generations, must equal the single-thread build's
 * results bit for bit (rows are independent, so any difference is a bug in
 * the hand-off, not rounding). Then failure: a worker that traps or dies
 * fails the product in flight with a clear error, and the pool recovers.
 */
import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import { ThreadPool } from "../../src/worker/pool.ts";
import { LlamaModel } from "../../src/model/llama.ts";
import { Engine } from "../../src/engine.ts";
import { SeerError } from "../../src/errors.ts";
import { randomF32 } from "../helpers.ts";
import { tinyModel } from "../formats/fixtures.ts";

const single = await Runtime.load();

/** Exact equality of two float arrays, compared as bit patterns. */
function assertBits(
  actual: Float32Array,
  expected: Float32Array,
  what: string,
) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(
    expected.buffer,
    expected.byteOffset,
    expected.length,
  );
  for (let i = 0; i < b.length; i++) {
    if (a[i] !== b[i]) {
      assert.fail(
        `${what}: element ${i} is ${actual[i]} (bits ${
          a[i]
        }), one thread gives ${expected[i]} (bits ${b[i]})`,
      );
    }
  }
}

interface Case {
  q8: boolean;
  rows: number;
  cols: number;
  m: number;
}

// Odd row counts (fewer rows than threads, splits that are not multiples
// of 4), the matvec (m = 1) and batched forms, an f32 column tail.
const CASES: Case[] = [
  { q8: false, rows: 1, cols: 64, m: 1 },
  { q8: false, rows: 2, cols: 100, m: 1 },
  { q8: false, rows: 37, cols: 77, m: 1 },
  { q8: false, rows: 515, cols: 96, m: 1 },
  { q8: false, rows: 301, cols: 64, m: 3 },
  { q8: false, rows: 129, cols: 130, m: 16 },
  { q8: true, rows: 3, cols: 32, m: 1 },
  { q8: true, rows: 333, cols: 96, m: 1 },
  { q8: true, rows: 250, cols: 64, m: 5 },
  { q8: true, rows: 67, cols: 160, m: 16 },
];

/** y = W x for a case in runtime `rt` (split when it has a pool). */
function product(rt: Runtime, c: Case, seed: number): Float32Array {
  const x = rt.arrayFrom(Float32Array, randomF32(c.m * c.cols, seed));
  const wf = rt.arrayFrom(Float32Array, randomF32(c.rows * c.cols, seed + 1));
  const ldy = c.rows + 3; // y rows further apart than rows: ldy is honoured
  const y = rt.arrayFrom(Float32Array, new Float32Array(c.m * ldy).fill(7));
  let w = wf.ptr, xq = 0;
  if (c.q8) {
    w = rt.alloc(c.rows * c.cols / 32 * 34);
    rt.k.quantize_q8_0(w, wf.ptr, c.rows * c.cols);
    xq = rt.alloc(c.m * c.cols / 32 * 34);
    rt.k.quantize_q8_0(xq, x.ptr, c.m * c.cols);
  }
  const input = c.q8 ? xq : x.ptr;
  if (rt.parallel) {
    rt.parallel.matmul(c.q8, y.ptr, w, input, c.rows, c.cols, c.m, ldy);
  } else if (c.q8) {
    if (c.m === 1) rt.k.matvec_q8_0(y.ptr, w, input, c.rows, c.cols);
    else rt.k.matmul_q8_0(y.ptr, w, input, c.rows, c.cols, c.m, ldy);
  } else if (c.m === 1) rt.k.matvec_f32(y.ptr, w, input, c.rows, c.cols);
  else rt.k.matmul_f32(y.ptr, w, input, c.rows, c.cols, c.m, ldy);
  const out = y.view.slice();
  for (const p of [x.ptr, wf.ptr, y.ptr]) rt.free(p);
  if (c.q8) {
    rt.free(w);
    rt.free(xq);
  }
  return out;
}

for (const threads of [2, 3]) {
  Deno.test(`pool: ${threads} threads split every product exactly as one thread computes it`, async () => {
    // minWork 0: even the smallest product is split.
    const pool = await ThreadPool.create({ threads, minWork: 0 });
    try {
      assert.equal(pool.liveWorkers, threads - 1);
      CASES.forEach((c, i) => {
        const what = `${c.q8 ? "q8_0" : "f32"} ${c.rows}×${c.cols} m=${c.m}`;
        assertBits(
          product(pool.runtime, c, i * 10),
          product(single, c, i * 10),
          what,
        );
      });
    } finally {
      await pool.dispose();
    }
  });
}

Deno.test("pool: forward passes with 2 workers equal one thread, f32 and q8_0, decode and batches", async () => {
  const file = {
    ...tinyModel({ vocabSize: 300, seqLen: 40 }),
    source: "tiny",
    format: "llama2c" as const,
  };
  const pool = await ThreadPool.create({ threads: 3, minWork: 0 });
  try {
    for (const quant of [undefined, "q8_0" as const]) {
      const one = LlamaModel.load(single, file, { quant });
      const par = LlamaModel.load(pool.runtime, file, { quant });
      const tokens = Array.from({ length: 21 }, (_, i) => (i * 37 + 5) % 300);
      // Prefill in batches (16 + 5 rows, logits of every row) …
      assertBits(
        par.forwardBatch(tokens, 0, true),
        one.forwardBatch(tokens, 0, true),
        `${quant ?? "f32"} batch`,
      );
      // … then single tokens on top of that cache.
      for (let pos = 21; pos < 30; pos++) {
        const t = (pos * 11) % 300;
        assertBits(
          par.forward(t, pos).slice(),
          one.forward(t, pos),
          `${quant ?? "f32"} decode at ${pos}`,
        );
      }
      assertBits(
        par.kvSnapshot(0, 30).keys,
        one.kvSnapshot(0, 30).keys,
        "key cache",
      );
      one.dispose();
      par.dispose();
    }
  } finally {
    await pool.dispose();
  }
});

Deno.test("pool: whole generations with 2 workers equal one thread (greedy and seeded sampling)", async () => {
  // minWork 0: the built-in model's products are all small enough to stay
  // on one thread otherwise.
  const pool = await ThreadPool.create({ threads: 3, minWork: 0 });
  const one = await Engine.load({ runtime: single });
  const par = await Engine.load({ runtime: pool.runtime });
  try {
    for (
      const sampling of [{ temperature: 0 }, { temperature: 0.9, topP: 0.9 }]
    ) {
      const req = {
        prompt: "Once upon a time",
        maxTokens: 120,
        sampling,
        seed: 5,
      };
      const a = par.complete(req), b = one.complete(req);
      assert.deepEqual(a.tokens, b.tokens);
      assert.equal(a.text, b.text);
      assert.ok(a.tokens.length > 60, "the run generated text");
    }
    assert.ok(pool.counts.split > 1000, `products split: ${pool.counts.split}`);
    assert.equal(pool.counts.alone, 0);
  } finally {
    one.dispose();
    par.dispose();
    await pool.dispose();
  }
});

const FAULTY = new URL("./faulty_worker.ts", import.meta.url);

/**
 * Runs products whose chunks fail in a faulty worker (`cols` 1000 or 1001)
 * until one lands on it: the caller may take every chunk before the worker
 * wakes, and then the product simply succeeds (and must be exact).
 */
function untilFailure(pool: ThreadPool, cols: number): unknown {
  const c: Case = { q8: false, rows: 512, cols, m: 1 };
  const expected = product(single, c, 9);
  for (let i = 0; i < 300; i++) {
    try {
      assertBits(
        product(pool.runtime, c, 9),
        expected,
        "a product no worker failed",
      );
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      return e;
    }
  }
  assert.fail("in 300 products the worker never claimed a chunk");
}

Deno.test("pool: a worker that fails mid-product gives a clear error, then the pool recovers", async () => {
  const pool = await ThreadPool.create({
    threads: 2,
    workerUrl: FAULTY,
    minWork: 0,
  });
  try {
    const normal: Case = { q8: false, rows: 300, cols: 64, m: 2 };
    const expected = product(single, normal, 3);
    assertBits(product(pool.runtime, normal, 3), expected, "before");
    const e = untilFailure(pool, 1000);
    assert.ok(e instanceof SeerError && e.code === "internal", String(e));
    assert.match(e.message, /worker 1: Error: injected fault/);
    assert.match(e.message, /retry the request/);
    // Meanwhile the caller does every chunk: results stay exact.
    assertBits(product(pool.runtime, normal, 3), expected, "while restarting");
    await pool.ready();
    assert.equal(pool.liveWorkers, 1, "a replacement serves");
    assertBits(product(pool.runtime, normal, 3), expected, "after the restart");
  } finally {
    await pool.dispose();
  }
});

Deno.test("pool: a worker stuck mid-product is found by the timeout, then replaced", async () => {
  const pool = await ThreadPool.create({
    threads: 2,
    workerUrl: FAULTY,
    minWork: 0,
    timeoutMs: 300,
  });
  try {
    const t0 = performance.now();
    const e = untilFailure(pool, 1001);
    assert.ok(e instanceof SeerError, String(e));
    assert.match(
      e.message,
      /worker 1: no answer within 300 ms \(crashed or stuck\)/,
    );
    assert.ok(performance.now() - t0 < 5000, "the timeout is honoured");
    await pool.ready();
    assert.equal(pool.liveWorkers, 1);
    const c: Case = { q8: true, rows: 90, cols: 64, m: 4 };
    assertBits(product(pool.runtime, c, 4), product(single, c, 4), "after");
  } finally {
    await pool.dispose();
  }
});

Deno.test("pool: bad options are refused with the valid range; 1 thread has no workers", async () => {
  for (const threads of [0, 1.5, 65, NaN]) {
    await assert.rejects(
      ThreadPool.create({ threads }),
      (e: unknown) =>
        e instanceof SeerError && e.code === "invalid_argument" &&
        /from 1 to 64/.test(e.message),
    );
  }
  await assert.rejects(
    ThreadPool.create({ threads: 2, timeoutMs: -1 }),
    /timeoutMs must be a non-negative finite number/,
  );
  await assert.rejects(
    ThreadPool.create({
      threads: 2,
      workerUrl: new URL("./no_such_worker.js", import.meta.url),
    }),
    (e: unknown) =>
      e instanceof SeerError &&
      /kernel worker 1 could not start from .*no_such_worker\.js/.test(
        e.message,
      ),
  );
  const pool = await ThreadPool.create({ threads: 1 });
  assert.equal(pool.runtime.parallel, null);
  assert.equal(pool.liveWorkers, 0);
  await pool.dispose();
});
