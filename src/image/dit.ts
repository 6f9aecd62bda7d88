/**
 * A DiT (Peebles & Xie, "Scalable Diffusion Models with Transformers") over
 * image patches, forward and backward, on the WASM kernels.
 *
 *   patches ─ linear ─ + learned positions ─ blocks ─ final adaLN ─ linear ─ noise
 *   timestep ─ sinusoid ─ MLP ─┐
 *   class ─── embedding ───────┴─ + ─ SiLU ─ per-block adaLN-Zero modulation
 *
 * Each block: h += gate1 · Attn(LN(h)·(1+scale1)+shift1), then
 *             h += gate2 · MLP(LN(h)·(1+scale2)+shift2), with GELU in the MLP.
 * Every image in a batch has its own shift/scale/gate vectors (from its
 * timestep and class), broadcast over its tokens.
 *
 * All parameters live in one flat f32 buffer (and their gradients in another
 * of the same layout), so AdamW, EMA, the gradient norm and the checkpoint
 * each handle them with one call. Activations for the backward (the tape)
 * are allocated once per batch size.
 */
import type { Runtime } from "../kernels/runtime.ts";
import type { DiTConfig } from "./config.ts";
import { tokensOf } from "./config.ts";

export interface ParamSpec {
  name: string;
  /** [rows, cols] (a vector is [1, n]). */
  shape: [number, number];
  init: "zeros" | "xavier" | "normal1" | "sincos2d";
  /** Whether AdamW's weight decay applies (matrices of linear layers only). */
  decay: boolean;
  /** Offset in floats within the flat buffer. */
  offset: number;
  size: number;
}

/** The parameter table in its fixed order (the order of the checkpoint too). */
export function paramSpecs(c: DiTConfig): ParamSpec[] {
  const specs: ParamSpec[] = [];
  let offset = 0;
  const add = (
    name: string,
    shape: [number, number],
    init: ParamSpec["init"],
    decay = false,
  ) => {
    const size = shape[0] * shape[1];
    specs.push({ name, shape, init, decay, offset, size });
    // Keep every tensor 16-byte aligned for the SIMD loads.
    offset += Math.ceil(size / 4) * 4;
  };
  const d = c.dim, hid = c.mlpRatio * c.dim;
  const pin = c.patch * c.patch * c.channels, pout = c.patch * c.patch;
  const linear = (
    name: string,
    out: number,
    inF: number,
    init: ParamSpec["init"],
  ) => {
    add(`${name}.weight`, [out, inF], init, true);
    add(`${name}.bias`, [1, out], "zeros");
  };
  linear("patch", d, pin, "xavier");
  add("pos", [tokensOf(c), d], "sincos2d");
  linear("time.1", d, c.freqDim, "xavier");
  linear("time.2", d, d, "xavier");
  add("label", [c.classes + 1, d], "normal1");
  for (let l = 0; l < c.depth; l++) {
    linear(`blocks.${l}.ada`, 6 * d, d, "zeros");
    linear(`blocks.${l}.qkv`, 3 * d, d, "xavier");
    linear(`blocks.${l}.proj`, d, d, "xavier");
    linear(`blocks.${l}.fc1`, hid, d, "xavier");
    linear(`blocks.${l}.fc2`, d, hid, "xavier");
  }
  linear("final.ada", 2 * d, d, "zeros");
  linear("final.out", pout, d, "zeros");
  return specs;
}

export function paramCount(specs: ParamSpec[]): number {
  const last = specs[specs.length - 1];
  return last.offset + Math.ceil(last.size / 4) * 4;
}

/** 2-D sine-cosine positions (as DiT's fixed table), the learned table's start. */
function sincos2d(out: Float32Array, grid: number, dim: number): void {
  const quarter = dim / 4;
  for (let y = 0; y < grid; y++) {
    for (let x = 0; x < grid; x++) {
      const row = (y * grid + x) * dim;
      for (let i = 0; i < quarter; i++) {
        const w = 1 / 10000 ** (i / quarter);
        out[row + i] = Math.sin(y * w);
        out[row + quarter + i] = Math.cos(y * w);
        out[row + 2 * quarter + i] = Math.sin(x * w);
        out[row + 3 * quarter + i] = Math.cos(x * w);
      }
    }
  }
}

/** Sinusoidal timestep features [cos(t·f_i), sin(t·f_i)], f_i = 10000^(−i/half). */
export function timestepFeatures(
  out: Float32Array,
  t: ArrayLike<number>,
  freqDim: number,
) {
  const half = freqDim / 2;
  for (let b = 0; b < t.length; b++) {
    for (let i = 0; i < half; i++) {
      const a = t[b] * Math.exp(-Math.log(10000) * i / half);
      out[b * freqDim + i] = Math.cos(a);
      out[b * freqDim + half + i] = Math.sin(a);
    }
  }
}

/** Per-block activations the backward needs (one set per block when training). */
interface BlockTape {
  mod: number; // [B, 6d] shift1 scale1 gate1 shift2 scale2 gate2
  xhat1: number; // [N, d]
  rstd1: number; // [N]
  m1: number; // [N, d]
  qkv: number; // [N, 3d]
  probs: number; // [B, H, T, T]
  att: number; // [N, d]
  o: number; // [N, d]
  xhat2: number; // [N, d]
  rstd2: number; // [N]
  m2: number; // [N, d]
  f1: number; // [N, hid]
  g: number; // [N, hid]
  f2: number; // [N, d]
}

/** Buffers for one batch size; `training` keeps a tape per block. */
class State {
  readonly ptrs: number[] = [];
  readonly tf: number; // [B, freqDim]
  readonly te1: number; // [B, d]
  readonly te1a: number;
  readonly te: number;
  readonly c: number; // [B, d]  time + class
  readonly cs: number; // [B, d]  silu(c)
  readonly labels: number; // [B] i32
  readonly x0: number; // [N, pin] patches
  readonly h: number; // [N, d]
  readonly blocks: BlockTape[] = [];
  readonly modf: number; // [B, 2d]
  readonly xhatf: number;
  readonly rstdf: number;
  readonly mf: number;
  readonly out: number; // [N, pout]
  readonly scratch: number;
  // Backward only.
  readonly dh = 0;
  readonly dtmp = 0; // [N, max(hid, 3d)]
  readonly dtmp2 = 0;
  readonly dmod = 0; // [B, 6d]
  readonly dcs = 0;
  readonly dc = 0;
  readonly dte1 = 0;

  constructor(
    readonly rt: Runtime,
    readonly c_: DiTConfig,
    readonly batch: number,
    readonly training: boolean,
  ) {
    const d = c_.dim, hid = c_.mlpRatio * d, T = tokensOf(c_);
    const N = batch * T, B = batch;
    const pin = c_.patch * c_.patch * c_.channels, pout = c_.patch * c_.patch;
    const f = (n: number) => {
      const p = rt.alloc(Math.max(n, 1) * 4);
      this.ptrs.push(p);
      return p;
    };
    this.tf = f(B * c_.freqDim);
    this.te1 = f(B * d);
    this.te1a = f(B * d);
    this.te = f(B * d);
    this.c = f(B * d);
    this.cs = f(B * d);
    this.labels = f(B);
    this.x0 = f(N * pin);
    this.h = f(N * d);
    const tape = (): BlockTape => ({
      mod: f(B * 6 * d),
      xhat1: f(N * d),
      rstd1: f(N),
      m1: f(N * d),
      qkv: f(N * 3 * d),
      probs: f(B * c_.heads * T * T),
      att: f(N * d),
      o: f(N * d),
      xhat2: f(N * d),
      rstd2: f(N),
      m2: f(N * d),
      f1: f(N * hid),
      g: f(N * hid),
      f2: f(N * d),
    });
    if (training) {
      for (let l = 0; l < c_.depth; l++) this.blocks.push(tape());
    } else {
      // Inference reuses one set of buffers for every block.
      const one = tape();
      for (let l = 0; l < c_.depth; l++) this.blocks.push(one);
    }
    this.modf = f(B * 2 * d);
    this.xhatf = f(N * d);
    this.rstdf = f(N);
    this.mf = f(N * d);
    this.out = f(N * pout);
    const hd = d / c_.heads;
    // Scratch serves gemm_nt_f32 (the transpose of every weight matrix, the
    // largest being a block's 6d × d adaLN) and mha_backward_f32.
    const largestWeight = Math.max(
      ...paramSpecs(c_).filter((p) => p.name.endsWith(".weight")).map((p) =>
        p.size
      ),
    );
    this.scratch = f(Math.max(largestWeight, T * T + hd * T));
    if (training) {
      const w = Math.max(hid, 3 * d);
      Object.assign(this, {
        dh: f(N * d),
        dtmp: f(N * w),
        dtmp2: f(N * w),
        dmod: f(B * 6 * d),
        dcs: f(B * d),
        dc: f(B * d),
        dte1: f(B * d),
      });
    }
  }

  free(): void {
    for (const p of this.ptrs) this.rt.free(p);
    this.ptrs.length = 0;
  }
}

/** A DiT whose parameters (and, for training, gradients) live in WASM memory. */
export class DiT {
  readonly specs: ParamSpec[];
  readonly byName: Map<string, ParamSpec>;
  readonly size: number;
  /** Flat parameters. */
  readonly params: number;
  /** Flat gradients (allocated on first use). */
  #grads = 0;
  #states = new Map<string, State>();
  readonly tokens: number;
  readonly grid: number;

  constructor(readonly rt: Runtime, readonly config: DiTConfig) {
    this.specs = paramSpecs(config);
    this.byName = new Map(this.specs.map((s) => [s.name, s]));
    this.size = paramCount(this.specs);
    this.params = rt.alloc(this.size * 4);
    rt.f32(this.params, this.size).fill(0);
    this.tokens = tokensOf(config);
    this.grid = config.imageSize / config.patch;
  }

  get grads(): number {
    if (!this.#grads) {
      this.#grads = this.rt.alloc(this.size * 4);
      this.rt.f32(this.#grads, this.size).fill(0);
    }
    return this.#grads;
  }

  /** Pointer of a parameter (or of its gradient with grad = true). */
  p(name: string, grad = false): number {
    const s = this.byName.get(name);
    if (!s) throw new Error(`DiT: no parameter ${name}`);
    return (grad ? this.grads : this.params) + s.offset * 4;
  }

  /**
   * Seeded initialisation: xavier-uniform linear weights (the timestep MLP
   * too), N(0, 1) class embeddings, zeros for biases and for every adaLN and
   * output projection (adaLN-Zero: each block starts as the identity), 2-D
   * sine-cosine positions. DiT draws its embeddings from N(0, 0.02); with
   * a few thousand steps instead of hundreds of thousands, conditioning
   * vectors of order 1 let the adaLN weights pick up the class and the
   * timestep from the first steps. `uniform(n)` and `normal(n)` supply the noise
   * (the WASM PRNG), so a seed fixes the weights.
   */
  init(
    uniform: (n: number) => Float32Array,
    normal: (n: number) => Float32Array,
  ): void {
    this.rt.f32(this.params, this.size).fill(0);
    for (const s of this.specs) {
      let values: Float32Array | undefined;
      if (s.init === "xavier") {
        const limit = Math.sqrt(6 / (s.shape[0] + s.shape[1]));
        values = uniform(s.size).map((u) => (2 * u - 1) * limit);
      } else if (s.init === "normal1") {
        values = normal(s.size);
      } else if (s.init === "sincos2d") {
        values = new Float32Array(s.size);
        sincos2d(values, this.grid, this.config.dim);
      }
      // zeros: already. The view is taken after the draws, which may grow memory.
      if (values) this.rt.f32(this.params + s.offset * 4, s.size).set(values);
    }
  }

  #state(batch: number, training: boolean): State {
    const key = `${batch}/${training}`;
    let s = this.#states.get(key);
    if (!s) {
      s = new State(this.rt, this.config, batch, training);
      this.#states.set(key, s);
    }
    return s;
  }

  /** Frees the activation buffers (parameters stay). */
  releaseStates(): void {
    for (const s of this.#states.values()) s.free();
    this.#states.clear();
  }

  dispose(): void {
    this.releaseStates();
    this.rt.free(this.params);
    if (this.#grads) this.rt.free(this.#grads);
  }

  #linear(
    s: State,
    out: number,
    x: number,
    rows: number,
    name: string,
    inF: number,
    outF: number,
  ): void {
    const k = this.rt.k;
    k.gemm_nt_f32(
      out,
      x,
      this.p(`${name}.weight`),
      s.scratch,
      rows,
      outF,
      inF,
      inF,
      inF,
      outF,
      0,
    );
    k.bias_add_f32(out, this.p(`${name}.bias`), rows, outF);
  }

  /** Accumulates the weight and bias gradients; writes (or adds to) dx if given. */
  #linearBack(
    dx: number,
    dy: number,
    x: number,
    rows: number,
    name: string,
    inF: number,
    outF: number,
    addDx = false,
  ): void {
    const k = this.rt.k;
    k.gemm_tn_f32(
      this.p(`${name}.weight`, true),
      dy,
      x,
      outF,
      inF,
      rows,
      outF,
      inF,
      inF,
      1,
    );
    k.sum_rows_f32(this.p(`${name}.bias`, true), dy, rows, outF);
    if (dx) {
      k.gemm_nn_f32(
        dx,
        dy,
        this.p(`${name}.weight`),
        rows,
        inF,
        outF,
        outF,
        inF,
        inF,
        addDx ? 1 : 0,
      );
    }
  }

  /**
   * Cuts images into patch tokens: `images` holds `batch` images of
   * channels × size × size (channel planes, row-major); token (py, px) of
   * image b becomes row b·T + py·grid + px with elements ordered
   * (dy, dx, channel).
   */
  patchify(
    dst: Float32Array,
    images: Float32Array,
    batch: number,
    channels: number,
  ): void {
    const { patch: p, imageSize: S } = this.config;
    const G = this.grid, vec = p * p * channels;
    for (let b = 0; b < batch; b++) {
      for (let c = 0; c < channels; c++) {
        const plane = (b * channels + c) * S * S;
        for (let y = 0; y < S; y++) {
          const py = Math.floor(y / p), dy = y % p;
          for (let x = 0; x < S; x++) {
            const px = Math.floor(x / p), dx = x % p;
            const row = b * G * G + py * G + px;
            dst[row * vec + (dy * p + dx) * channels + c] =
              images[plane + y * S + x];
          }
        }
      }
    }
  }

  /** The inverse of patchify for one channel. */
  unpatchify(dst: Float32Array, tokens: Float32Array, batch: number): void {
    const { patch: p, imageSize: S } = this.config;
    const G = this.grid, vec = p * p;
    for (let b = 0; b < batch; b++) {
      for (let y = 0; y < S; y++) {
        const py = Math.floor(y / p), dy = y % p;
        for (let x = 0; x < S; x++) {
          const px = Math.floor(x / p), dx = x % p;
          dst[b * S * S + y * S + x] =
            tokens[(b * G * G + py * G + px) * vec + dy * p + dx];
        }
      }
    }
  }

  /**
   * Predicts the noise in `images` (batch × channels × size × size) at
   * timesteps `t` with labels `labels` (the null label = classes for none).
   * Returns the prediction in token layout ([batch · T, patch²] at the
   * returned pointer), valid until the next call with this batch size.
   */
  forwardTokens(
    images: Float32Array,
    t: ArrayLike<number>,
    labels: ArrayLike<number>,
    batch: number,
    training = false,
  ): number {
    const rt = this.rt, k = rt.k, cfg = this.config;
    const s = this.#state(batch, training);
    const d = cfg.dim,
      hid = cfg.mlpRatio * d,
      T = this.tokens,
      B = batch,
      N = B * T;
    const pin = cfg.patch * cfg.patch * cfg.channels,
      pout = cfg.patch * cfg.patch;
    const hd = d / cfg.heads;

    this.patchify(rt.f32(s.x0, N * pin), images, B, cfg.channels);
    this.#linear(s, s.h, s.x0, N, "patch", pin, d);
    // Positions: the same T × d table added to every image.
    for (let b = 0; b < B; b++) {
      k.sum_rows_f32(s.h + b * T * d * 4, this.p("pos"), 1, T * d);
    }
    timestepFeatures(rt.f32(s.tf, B * cfg.freqDim), t, cfg.freqDim);
    this.#linear(s, s.te1, s.tf, B, "time.1", cfg.freqDim, d);
    k.silu_f32(s.te1a, s.te1, B * d);
    this.#linear(s, s.te, s.te1a, B, "time.2", d, d);
    rt.view(Int32Array, s.labels, B).set(labels);
    k.embedding_f32(s.c, this.p("label"), s.labels, B, d);
    k.sum_rows_f32(s.c, s.te, 1, B * d);
    k.silu_f32(s.cs, s.c, B * d);

    for (let l = 0; l < cfg.depth; l++) {
      const bt = s.blocks[l], pre = `blocks.${l}`;
      this.#linear(s, bt.mod, s.cs, B, `${pre}.ada`, d, 6 * d);
      const mod = (b: number, i: number) => bt.mod + (b * 6 + i) * d * 4;
      const tok = (ptr: number, b: number, w = d) => ptr + b * T * w * 4;
      k.layernorm_rows_f32(bt.xhat1, bt.rstd1, s.h, N, d, 1e-6);
      for (let b = 0; b < B; b++) {
        k.modulate_f32(
          tok(bt.m1, b),
          tok(bt.xhat1, b),
          mod(b, 0),
          mod(b, 1),
          T,
          d,
        );
      }
      this.#linear(s, bt.qkv, bt.m1, N, `${pre}.qkv`, d, 3 * d);
      k.mha_forward_f32(
        bt.att,
        bt.probs,
        bt.qkv,
        s.scratch,
        B,
        T,
        cfg.heads,
        hd,
      );
      this.#linear(s, bt.o, bt.att, N, `${pre}.proj`, d, d);
      for (let b = 0; b < B; b++) {
        k.gate_add_f32(tok(s.h, b), mod(b, 2), tok(bt.o, b), T, d);
      }
      k.layernorm_rows_f32(bt.xhat2, bt.rstd2, s.h, N, d, 1e-6);
      for (let b = 0; b < B; b++) {
        k.modulate_f32(
          tok(bt.m2, b),
          tok(bt.xhat2, b),
          mod(b, 3),
          mod(b, 4),
          T,
          d,
        );
      }
      this.#linear(s, bt.f1, bt.m2, N, `${pre}.fc1`, d, hid);
      k.gelu_fast_f32(bt.g, bt.f1, N * hid);
      this.#linear(s, bt.f2, bt.g, N, `${pre}.fc2`, hid, d);
      for (let b = 0; b < B; b++) {
        k.gate_add_f32(tok(s.h, b), mod(b, 5), tok(bt.f2, b), T, d);
      }
    }

    this.#linear(s, s.modf, s.cs, B, "final.ada", d, 2 * d);
    k.layernorm_rows_f32(s.xhatf, s.rstdf, s.h, N, d, 1e-6);
    for (let b = 0; b < B; b++) {
      k.modulate_f32(
        s.mf + b * T * d * 4,
        s.xhatf + b * T * d * 4,
        s.modf + b * 2 * d * 4,
        s.modf + (b * 2 + 1) * d * 4,
        T,
        d,
      );
    }
    this.#linear(s, s.out, s.mf, N, "final.out", d, pout);
    return s.out;
  }

  /** Predicted noise as images (batch × size × size), copied out. */
  forward(
    images: Float32Array,
    t: ArrayLike<number>,
    labels: ArrayLike<number>,
    batch: number,
  ): Float32Array {
    const out = this.forwardTokens(images, t, labels, batch, false);
    const S = this.config.imageSize, pout = this.config.patch ** 2;
    const result = new Float32Array(batch * S * S);
    this.unpatchify(
      result,
      this.rt.f32(out, batch * this.tokens * pout),
      batch,
    );
    return result;
  }

  /**
   * Backward of the last training forward of this batch size, given the
   * gradient of the loss w.r.t. its output (token layout, at `dout`).
   * Gradients accumulate into `grads` (zero them first for a fresh step).
   */
  backward(dout: number, batch: number): void {
    const rt = this.rt, k = rt.k, cfg = this.config;
    const s = this.#state(batch, true);
    const d = cfg.dim,
      hid = cfg.mlpRatio * d,
      T = this.tokens,
      B = batch,
      N = B * T;
    const pin = cfg.patch * cfg.patch * cfg.channels,
      pout = cfg.patch * cfg.patch;
    const hd = d / cfg.heads;
    const tok = (ptr: number, b: number, w = d) => ptr + b * T * w * 4;

    // Final layer.
    this.#linearBack(s.dtmp, dout, s.mf, N, "final.out", d, pout);
    rt.f32(s.dmod, B * 2 * d).fill(0);
    for (let b = 0; b < B; b++) {
      k.modulate_backward_f32(
        tok(s.dtmp, b),
        s.dmod + b * 2 * d * 4,
        s.dmod + (b * 2 + 1) * d * 4,
        tok(s.dtmp, b),
        tok(s.xhatf, b),
        s.modf + (b * 2 + 1) * d * 4,
        T,
        d,
      );
    }
    k.layernorm_rows_backward_f32(s.dh, s.dtmp, s.xhatf, s.rstdf, N, d);
    this.#linearBack(s.dcs, s.dmod, s.cs, B, "final.ada", d, 2 * d);

    for (let l = cfg.depth - 1; l >= 0; l--) {
      const bt = s.blocks[l], pre = `blocks.${l}`;
      const mod = (b: number, i: number) => bt.mod + (b * 6 + i) * d * 4;
      const dmod = (b: number, i: number) => s.dmod + (b * 6 + i) * d * 4;
      rt.f32(s.dmod, B * 6 * d).fill(0);
      // MLP branch: h += gate2 · fc2(gelu(fc1(m2))).
      for (let b = 0; b < B; b++) {
        k.gate_add_backward_f32(
          tok(s.dtmp, b),
          dmod(b, 5),
          tok(s.dh, b),
          tok(bt.f2, b),
          mod(b, 5),
          T,
          d,
        );
      }
      this.#linearBack(s.dtmp2, s.dtmp, bt.g, N, `${pre}.fc2`, hid, d);
      k.gelu_backward_f32(s.dtmp2, bt.f1, s.dtmp2, N * hid);
      this.#linearBack(s.dtmp, s.dtmp2, bt.m2, N, `${pre}.fc1`, d, hid);
      for (let b = 0; b < B; b++) {
        k.modulate_backward_f32(
          tok(s.dtmp, b),
          dmod(b, 3),
          dmod(b, 4),
          tok(s.dtmp, b),
          tok(bt.xhat2, b),
          mod(b, 4),
          T,
          d,
        );
      }
      k.layernorm_rows_backward_f32(s.dtmp, s.dtmp, bt.xhat2, bt.rstd2, N, d);
      k.sum_rows_f32(s.dh, s.dtmp, 1, N * d);
      // Attention branch: h += gate1 · proj(attn(qkv(m1))).
      for (let b = 0; b < B; b++) {
        k.gate_add_backward_f32(
          tok(s.dtmp, b),
          dmod(b, 2),
          tok(s.dh, b),
          tok(bt.o, b),
          mod(b, 2),
          T,
          d,
        );
      }
      this.#linearBack(s.dtmp2, s.dtmp, bt.att, N, `${pre}.proj`, d, d);
      k.mha_backward_f32(
        s.dtmp,
        s.dtmp2,
        bt.qkv,
        bt.probs,
        s.scratch,
        B,
        T,
        cfg.heads,
        hd,
      );
      this.#linearBack(s.dtmp2, s.dtmp, bt.m1, N, `${pre}.qkv`, d, 3 * d);
      for (let b = 0; b < B; b++) {
        k.modulate_backward_f32(
          tok(s.dtmp2, b),
          dmod(b, 0),
          dmod(b, 1),
          tok(s.dtmp2, b),
          tok(bt.xhat1, b),
          mod(b, 1),
          T,
          d,
        );
      }
      k.layernorm_rows_backward_f32(s.dtmp2, s.dtmp2, bt.xhat1, bt.rstd1, N, d);
      k.sum_rows_f32(s.dh, s.dtmp2, 1, N * d);
      // The block's modulation came from silu(c).
      this.#linearBack(s.dcs, s.dmod, s.cs, B, `${pre}.ada`, d, 6 * d, true);
    }

    // Conditioning: c = time MLP + label embedding; cs = silu(c).
    k.silu_backward_f32(s.dc, s.c, s.dcs, B * d);
    k.embedding_backward_f32(this.p("label", true), s.labels, s.dc, B, d);
    this.#linearBack(s.dte1, s.dc, s.te1a, B, "time.2", d, d);
    k.silu_backward_f32(s.dte1, s.te1, s.dte1, B * d);
    this.#linearBack(0, s.dte1, s.tf, B, "time.1", cfg.freqDim, d);
    // Input: h = patch(x0) + pos.
    k.sum_rows_f32(this.p("pos", true), s.dh, B, T * d);
    this.#linearBack(0, s.dh, s.x0, N, "patch", pin, d);
  }
}
