import assert from "node:assert/strict";
import { Runtime } from "../../src/kernels/runtime.ts";
import * as ref from "../../src/kernels/ref/train_ops.ts";
import { assertNmse, randomF32, testRng } from "../helpers.ts";
import { assertGrad, numericGrad, Scope } from "./train_grad_helpers.ts";

const rt = await Runtime.load();

/** (rows, cols) around the SIMD width, plus a DiT-sized one. */
const SHAPES: [number, number][] = [[1, 1], [2, 3], [3, 4], [5, 7], [4, 17], [
  49,
  64,
]];
/** Small shapes for finite differences (every input perturbed twice). */
const GRAD_SHAPES: [number, number][] = [[1, 3], [3, 4], [2, 9]];

Deno.test("layernorm_rows_f32 matches the twin", () => {
  SHAPES.forEach(([rows, cols], i) => {
    // An offset mean checks the two-pass variance.
    const x = randomF32(rows * cols, i, 3, 5);
    const out = new Float32Array(rows * cols), rstd = new Float32Array(rows);
    ref.layernorm_rows_f32(out, rstd, x, rows, cols, 1e-6);
    const s = new Scope(rt);
    const po = s.f32(rows * cols), pr = s.f32(rows);
    rt.k.layernorm_rows_f32(po, pr, s.f32(x), rows, cols, 1e-6);
    // A one-element row normalises to 0 exactly: compare absolutely.
    if (cols === 1) assert.deepEqual([...s.read(po, rows)], [...out]);
    else assertNmse(s.read(po, rows * cols), out, 1e-7, `out ${rows}x${cols}`);
    assertNmse(s.read(pr, rows), rstd, 1e-7, `rstd ${rows}x${cols}`);
    s.free();
  });
});

Deno.test("layernorm_rows_backward_f32 matches finite differences and the twin", () => {
  GRAD_SHAPES.forEach(([rows, cols], i) => {
    const x = randomF32(rows * cols, 20 + i);
    const dy = randomF32(rows * cols, 30 + i);
    const s = new Scope(rt);
    const ph = s.f32(rows * cols), pr = s.f32(rows), pdx = s.f32(rows * cols);
    rt.k.layernorm_rows_f32(ph, pr, s.f32(x), rows, cols, 1e-5);
    rt.k.layernorm_rows_backward_f32(pdx, s.f32(dy), ph, pr, rows, cols);
    const num = numericGrad(
      (v) => {
        const out = new Float64Array(rows * cols);
        ref.layernorm_rows_f32(
          out,
          new Float64Array(rows),
          v,
          rows,
          cols,
          1e-5,
        );
        return out;
      },
      x,
      dy,
    );
    assertGrad(s.read(pdx, rows * cols), num, `dx ${rows}x${cols}`);
    const twin = new Float32Array(rows * cols);
    ref.layernorm_rows_backward_f32(
      twin,
      dy,
      s.read(ph, rows * cols),
      s.read(pr, rows),
      rows,
      cols,
    );
    assertNmse(s.read(pdx, rows * cols), twin);
    s.free();
  });
});

Deno.test("modulate_f32 and its backward: twin and finite differences", () => {
  SHAPES.forEach(([rows, cols], i) => {
    const x = randomF32(rows * cols, i), sh = randomF32(cols, i + 1);
    const sc = randomF32(cols, i + 2), dy = randomF32(rows * cols, i + 3);
    const s = new Scope(rt);
    const po = s.f32(rows * cols),
      px = s.f32(x),
      psh = s.f32(sh),
      psc = s.f32(sc);
    rt.k.modulate_f32(po, px, psh, psc, rows, cols);
    const out = new Float32Array(rows * cols);
    ref.modulate_f32(out, x, sh, sc, rows, cols);
    assertNmse(s.read(po, rows * cols), out);
    const pdx = s.f32(rows * cols), pdsh = s.f32(cols), pdsc = s.f32(cols);
    rt.k.modulate_backward_f32(pdx, pdsh, pdsc, s.f32(dy), px, psc, rows, cols);
    if (rows * cols <= 40) {
      const f = (xx: Float64Array, a: Float64Array, b: Float64Array) => {
        const o = new Float64Array(rows * cols);
        ref.modulate_f32(o, xx, a, b, rows, cols);
        return o;
      };
      const X = Float64Array.from(x),
        SH = Float64Array.from(sh),
        SC = Float64Array.from(sc);
      assertGrad(
        s.read(pdx, rows * cols),
        numericGrad((v) => f(v, SH, SC), x, dy),
        "dx",
      );
      assertGrad(
        s.read(pdsh, cols),
        numericGrad((v) => f(X, v, SC), sh, dy),
        "dshift",
      );
      assertGrad(
        s.read(pdsc, cols),
        numericGrad((v) => f(X, SH, v), sc, dy),
        "dscale",
      );
    }
    const tdx = new Float32Array(rows * cols), tsh = new Float32Array(cols);
    const tsc = new Float32Array(cols);
    ref.modulate_backward_f32(tdx, tsh, tsc, dy, x, sc, rows, cols);
    assertNmse(s.read(pdx, rows * cols), tdx);
    assertNmse(s.read(pdsh, cols), tsh);
    assertNmse(s.read(pdsc, cols), tsc);
    s.free();
  });
});

Deno.test("gate_add_f32 and its backward: twin and finite differences", () => {
  SHAPES.forEach(([rows, cols], i) => {
    const h = randomF32(rows * cols, i), g = randomF32(cols, i + 1);
    const y = randomF32(rows * cols, i + 2), dh = randomF32(rows * cols, i + 3);
    const s = new Scope(rt);
    const ph = s.f32(h), pg = s.f32(g), py = s.f32(y);
    rt.k.gate_add_f32(ph, pg, py, rows, cols);
    const out = Float32Array.from(h);
    ref.gate_add_f32(out, g, y, rows, cols);
    assertNmse(s.read(ph, rows * cols), out);
    // The gate starts with a non-zero gradient: dgate accumulates.
    const dg0 = randomF32(cols, i + 4);
    const pdy = s.f32(rows * cols), pdg = s.f32(dg0);
    rt.k.gate_add_backward_f32(pdy, pdg, s.f32(dh), py, pg, rows, cols);
    const f = (gg: Float64Array, yy: Float64Array) => {
      const o = Float64Array.from(h);
      ref.gate_add_f32(o, gg, yy, rows, cols);
      return o;
    };
    if (rows * cols <= 40) {
      const dy = numericGrad((v) => f(Float64Array.from(g), v), y, dh);
      const dg = numericGrad((v) => f(v, Float64Array.from(y)), g, dh);
      assertGrad(s.read(pdy, rows * cols), dy, "dy");
      assertGrad(s.read(pdg, cols), dg.map((v, j) => v + dg0[j]), "dgate");
    }
    const tdy = new Float32Array(rows * cols), tdg = Float32Array.from(dg0);
    ref.gate_add_backward_f32(tdy, tdg, dh, y, g, rows, cols);
    assertNmse(s.read(pdy, rows * cols), tdy);
    assertNmse(s.read(pdg, cols), tdg);
    s.free();
  });
});

Deno.test("bias_add_f32 and sum_rows_f32 (its backward)", () => {
  SHAPES.forEach(([rows, cols], i) => {
    const y = randomF32(rows * cols, i), b = randomF32(cols, i + 1);
    const s = new Scope(rt);
    const py = s.f32(y);
    rt.k.bias_add_f32(py, s.f32(b), rows, cols);
    const out = Float32Array.from(y);
    ref.bias_add_f32(out, b, rows, cols);
    assertNmse(s.read(py, rows * cols), out);
    const acc0 = randomF32(cols, i + 2);
    const pacc = s.f32(acc0);
    rt.k.sum_rows_f32(pacc, py, rows, cols);
    const tacc = Float32Array.from(acc0);
    ref.sum_rows_f32(tacc, out, rows, cols);
    assertNmse(s.read(pacc, cols), tacc);
    if (rows * cols <= 40) {
      // d/db Σ w ⊙ (y + b) = Σ_r w[r]: sum_rows is bias_add's backward.
      const w = randomF32(rows * cols, i + 3);
      const pdb = s.f32(cols);
      rt.k.sum_rows_f32(pdb, s.f32(w), rows, cols);
      const num = numericGrad(
        (v) => {
          const o = Float64Array.from(y);
          ref.bias_add_f32(o, v, rows, cols);
          return o;
        },
        b,
        w,
      );
      assertGrad(s.read(pdb, cols), num, "db");
    }
    s.free();
  });
});

for (const act of ["gelu", "silu"] as const) {
  const fwd = act === "gelu" ? "gelu_fast_f32" : "silu_f32";
  const def = act === "gelu" ? ref.gelu_fast_f32 : ref.silu;
  Deno.test(`${fwd} and ${act}_backward_f32: definition and finite differences`, () => {
    for (const n of [1, 3, 4, 7, 33, 1000]) {
      // Wide inputs: the vector exp's range reduction and tanh's saturation.
      const x = randomF32(n, n, -12, 12), dy = randomF32(n, n + 1);
      const s = new Scope(rt);
      const px = s.f32(x), po = s.f32(n), pdx = s.f32(n);
      rt.k[fwd](po, px, n);
      const out = new Float32Array(n);
      def(out, x, n);
      assertNmse(s.read(po, n), out);
      rt.k[`${act}_backward_f32`](pdx, px, s.f32(dy), n);
      const num = numericGrad(
        (v) => {
          const o = new Float64Array(n);
          def(o, v, n);
          return o;
        },
        x,
        dy,
      );
      assertGrad(s.read(pdx, n), num, `${act} n=${n}`);
      // In place: dx may be dy.
      const pdy = s.f32(dy);
      rt.k[`${act}_backward_f32`](pdy, px, pdy, n);
      assert.deepEqual(s.read(pdy, n), s.read(pdx, n));
      s.free();
    }
  });
}

Deno.test("embedding_f32 and embedding_backward_f32 (scatter-add, repeats)", () => {
  const rows = 11, cols = 6, n = 9;
  const table = randomF32(rows * cols, 1), dy = randomF32(n * cols, 2);
  const rand = testRng(3);
  const idx = Int32Array.from({ length: n }, () => Math.floor(rand() * rows));
  idx[1] = idx[0]; // a repeated index must add both gradients
  const s = new Scope(rt);
  const po = s.f32(n * cols), pidx = s.i32(idx);
  rt.k.embedding_f32(po, s.f32(table), pidx, n, cols);
  const out = new Float32Array(n * cols);
  ref.embedding_f32(out, table, idx, n, cols);
  assert.deepEqual(s.read(po, n * cols), out);
  const pdt = s.f32(rows * cols);
  rt.k.embedding_backward_f32(pdt, pidx, s.f32(dy), n, cols);
  const num = numericGrad(
    (v) => {
      const o = new Float64Array(n * cols);
      ref.embedding_f32(o, v, idx, n, cols);
      return o;
    },
    table,
    dy,
  );
  assertGrad(s.read(pdt, rows * cols), num, "dtable");
  s.free();
});

Deno.test("mse_loss_f32: loss and gradient", () => {
  for (const n of [1, 5, 64, 1001]) {
    const p = randomF32(n, n), t = randomF32(n, n + 1);
    const s = new Scope(rt);
    const pg = s.f32(n);
    const loss = rt.k.mse_loss_f32(pg, s.f32(p), s.f32(t), n, 2 / n);
    const g = new Float32Array(n);
    const tl = ref.mse_loss_f32(g, p, t, n, 2 / n);
    assert.ok(Math.abs(loss - tl) <= 1e-6 * tl, `${loss} vs ${tl}`);
    assertNmse(s.read(pg, n), g);
    if (n <= 64) {
      // d/dp of the mean squared error (2/n scale).
      const num = numericGrad(
        (v) => {
          const gg = new Float64Array(n);
          return Float64Array.of(
            ref.mse_loss_f32(gg, v, Float64Array.from(t), n, 1) / n,
          );
        },
        p,
        [1],
      );
      assertGrad(s.read(pg, n), num, "dpred");
    }
    s.free();
  }
});

Deno.test("softmax_xent_f32: loss and gradient", () => {
  const rows = 4, cols = 10;
  const logits = randomF32(rows * cols, 7, -4, 4);
  const labels = Int32Array.of(3, 0, 9, 3);
  const s = new Scope(rt);
  const pd = s.f32(rows * cols);
  const loss = rt.k.softmax_xent_f32(
    pd,
    s.f32(logits),
    s.i32(labels),
    rows,
    cols,
    1 / rows,
  );
  const td = new Float32Array(rows * cols);
  const tl = ref.softmax_xent_f32(td, logits, labels, rows, cols, 1 / rows);
  assert.ok(Math.abs(loss - tl) <= 1e-6 * tl);
  assertNmse(s.read(pd, rows * cols), td);
  const num = numericGrad(
    (v) => {
      const d = new Float64Array(rows * cols);
      return Float64Array.of(
        ref.softmax_xent_f32(d, v, labels, rows, cols, 1) / rows,
      );
    },
    logits,
    [1],
  );
  assertGrad(s.read(pd, rows * cols), num, "dlogits");
  s.free();
});

Deno.test("sumsq_f32 matches an f64 sum, also over a million values", () => {
  for (const n of [0, 1, 3, 4, 1025, 1 << 20]) {
    const x = randomF32(n, n + 1);
    const s = new Scope(rt);
    const got = rt.k.sumsq_f32(s.f32(x), n);
    const want = ref.sumsq_f32(x, n);
    assert.ok(Math.abs(got - want) <= 1e-6 * want, `n=${n}: ${got} vs ${want}`);
    s.free();
  }
});

Deno.test("adamw_f32 and ema_f32 match their twins over several steps", () => {
  const n = 37;
  const s = new Scope(rt);
  const p = randomF32(n, 1), m = new Float32Array(n), v = new Float32Array(n);
  const pp = s.f32(p), pm = s.f32(n), pv = s.f32(n), pg = s.f32(n);
  const avg = Float32Array.from(p), pavg = s.f32(p);
  for (let t = 1; t <= 5; t++) {
    const g = randomF32(n, 100 + t);
    rt.f32(pg, n).set(g);
    const [b1, b2] = [0.9, 0.999];
    const args = [
      1e-2,
      b1,
      b2,
      1e-8,
      0.1,
      1 - b1 ** t,
      1 - b2 ** t,
      0.5,
    ] as const;
    rt.k.adamw_f32(pp, pg, pm, pv, n, ...args);
    ref.adamw_f32(p, g, m, v, n, ...args);
    rt.k.ema_f32(pavg, pp, n, 0.9);
    ref.ema_f32(avg, p, n, 0.9);
  }
  assertNmse(s.read(pp, n), p, 1e-7, "params");
  assertNmse(s.read(pm, n), m, 1e-7, "m");
  assertNmse(s.read(pv, n), v, 1e-7, "v");
  assertNmse(s.read(pavg, n), avg, 1e-7, "ema");
  s.free();
});
