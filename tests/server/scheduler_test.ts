/**
 * The scheduler alone, with scripted generators standing in for the model:
 * slots interleave token by token, the queue is FIFO and bounded, aborts
 * and deadlines end jobs running or queued, and forks are made once per
 * slot and reused.
 */
import assert from "node:assert/strict";
import type { Engine, GenerateResult } from "../../src/engine.ts";
import type { TokenEvent } from "../../src/generate/decoder.ts";
import {
  DeadlineExceeded,
  type Job,
  Scheduler,
} from "../../src/server/scheduler.ts";
import { ApiError } from "../../src/server/errors.ts";

/** A stand-in for Engine: counts forks and disposals. */
function fakeEngine() {
  const made = { forks: 0, disposed: 0 };
  const engine = {
    fork: () => {
      made.forks++;
      return { dispose: () => made.disposed++ } as unknown as Engine;
    },
  } as unknown as Engine;
  return { engine, made };
}

/** A job emitting `n` tokens named after it, stopping early when aborted. */
function job(name: string, n: number, log: string[], deadline = Infinity) {
  const controller = new AbortController();
  let settle!: (v: string) => void;
  const outcome = new Promise<string>((r) => (settle = r));
  const j: Job = {
    controller,
    deadline,
    *start(): Generator<TokenEvent, GenerateResult, void> {
      let i = 0;
      for (; i < n && !controller.signal.aborted; i++) {
        yield { token: i, text: `${name}${i}` };
      }
      return {
        tokens: [],
        n_prompt_tokens: 1,
        text: "",
        finish_reason: controller.signal.aborted ? "abort" : "length",
        stats: {
          prompt_tokens: 1,
          generated_tokens: i,
          prompt_ms: 0,
          generation_ms: 0,
          prompt_tokens_per_second: 0,
          tokens_per_second: 0,
        },
      };
    },
    onToken: (e) => log.push(e.text),
    onDone: (r) =>
      settle(`done ${r.finish_reason} ${r.stats.generated_tokens}`),
    onError: (e) => settle(`error ${e instanceof Error ? e.name : String(e)}`),
  };
  return { job: j, outcome, controller };
}

Deno.test("active jobs interleave one token each per round", async () => {
  const { engine, made } = fakeEngine();
  const s = new Scheduler(engine, { slots: 3, maxQueue: 0 });
  const log: string[] = [];
  const jobs = [job("a", 3, log), job("b", 2, log), job("c", 3, log)];
  for (const j of jobs) s.submit(j.job);
  assert.equal(s.busySlots, 3);
  assert.deepEqual(await Promise.all(jobs.map((j) => j.outcome)), [
    "done length 3",
    "done length 2",
    "done length 3",
  ]);
  assert.deepEqual(log, ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "c2"]);
  await s.idle();
  assert.equal(s.busySlots, 0);
  assert.equal(made.forks, 3);
  s.dispose();
  assert.equal(made.disposed, 3);
});

Deno.test("the queue is FIFO, bounded, and reuses the freed slot's fork", async () => {
  const { engine, made } = fakeEngine();
  const s = new Scheduler(engine, { slots: 1, maxQueue: 2, retryAfter: 3 });
  const log: string[] = [];
  const [a, b, c] = [job("a", 2, log), job("b", 1, log), job("c", 1, log)];
  s.submit(a.job);
  s.submit(b.job);
  s.submit(c.job);
  assert.equal(s.queueDepth, 2);
  const full = job("d", 1, log);
  assert.throws(() => s.submit(full.job), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.status, 429);
    assert.equal(e.headers["Retry-After"], "3");
    return true;
  });
  await Promise.all([a.outcome, b.outcome, c.outcome]);
  assert.deepEqual(log, ["a0", "a1", "b0", "c0"]);
  assert.equal(made.forks, 1);
});

Deno.test("aborts stop a running job within one step and drop a queued one", async () => {
  const { engine } = fakeEngine();
  const s = new Scheduler(engine, { slots: 1, maxQueue: 4 });
  const log: string[] = [];
  const long = job("a", 1_000_000, log);
  const waiting = job("b", 1, log);
  const next = job("c", 2, log);
  s.submit(long.job);
  s.submit(waiting.job);
  s.submit(next.job);
  waiting.controller.abort(new Error("gone"));
  assert.equal(s.queueDepth, 1, "an aborted queued job leaves at once");
  assert.equal(await waiting.outcome, "error Error");
  while (log.length < 5) await new Promise((r) => setTimeout(r, 1));
  const before = log.length;
  long.controller.abort();
  assert.match(await long.outcome, /^done abort \d+$/);
  // Tokens already emitted, plus at most the step that was in flight.
  assert.ok(log.filter((t) => t.startsWith("a")).length <= before + 1);
  assert.equal(await next.outcome, "done length 2");
});

Deno.test("deadlines end running jobs (abort) and expire queued ones (error)", async () => {
  const { engine } = fakeEngine();
  const s = new Scheduler(engine, { slots: 1, maxQueue: 4 });
  const log: string[] = [];
  const now = performance.now();
  const running = job("a", 1_000_000, log, now + 30);
  const queued = job("b", 1, log, now + 10);
  s.submit(running.job);
  s.submit(queued.job);
  assert.equal(await queued.outcome, "error DeadlineExceeded");
  assert.match(await running.outcome, /^done abort \d+$/);
  assert.ok(running.controller.signal.reason instanceof DeadlineExceeded);
  assert.ok(performance.now() - now >= 30);
});

Deno.test("close refuses new work with 503; abortAll ends everything", async () => {
  const { engine } = fakeEngine();
  const s = new Scheduler(engine, { slots: 1, maxQueue: 1 });
  const log: string[] = [];
  const a = job("a", 1_000_000, log);
  const b = job("b", 1_000_000, log);
  s.submit(a.job);
  s.submit(b.job);
  s.close();
  assert.throws(
    () => s.submit(job("c", 1, log).job),
    (e: unknown) => e instanceof ApiError && e.status === 503,
  );
  s.abortAll();
  assert.equal(await b.outcome, "error ShuttingDown");
  assert.match(await a.outcome, /^done abort/);
  await s.idle();
});

Deno.test("a job whose generator throws fails alone; its slot is freed", async () => {
  const { engine } = fakeEngine();
  const s = new Scheduler(engine, { slots: 1, maxQueue: 1 });
  const log: string[] = [];
  const bad = job("x", 1, log);
  bad.job.start = function* () {
    yield { token: 0, text: "x0" };
    throw new RangeError("broken");
  };
  const after = job("y", 1, log);
  s.submit(bad.job);
  s.submit(after.job);
  assert.equal(await bad.outcome, "error RangeError");
  assert.equal(await after.outcome, "done length 1");
});
