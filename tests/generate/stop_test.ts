import assert from "node:assert/strict";
import { StopMatcher } from "../../src/generate/stop.ts";

function run(stops: string[], pieces: string[]) {
  const m = new StopMatcher(stops);
  let out = "";
  const shown: string[] = [];
  for (const p of pieces) {
    const r = m.push(p);
    out += r.text;
    shown.push(r.text);
    if (r.stopped) return { out, shown, stopped: true };
  }
  out += m.flush();
  return { out, shown, stopped: false };
}

Deno.test("stop: a stop string split over pieces is never shown", () => {
  const r = run(["The end"], ["Once", " upon. The", " e", "nd and more"]);
  assert.equal(r.out, "Once upon. ");
  assert.ok(r.stopped);
  assert.ok(!r.shown.some((s) => s.includes("The")));
});

Deno.test("stop: held text is released when it stops matching", () => {
  const r = run(["\n\n"], ["a\n", "b", "c"]);
  assert.equal(r.out, "a\nbc");
  assert.deepEqual(r.shown, ["a", "\nb", "c"]);
  assert.ok(!r.stopped);
});

Deno.test("stop: earliest of several stop strings wins", () => {
  const r = run(["cd", "b"], ["abcd"]);
  assert.equal(r.out, "a");
});

Deno.test("stop: no stop strings passes text through", () => {
  const r = run([], ["x", "y"]);
  assert.deepEqual(r.shown, ["x", "y"]);
});
