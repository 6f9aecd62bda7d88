/**
 * The Llama-family transformer over the WASM kernels: RMSNorm, RoPE,
 * grouped-query attention with a KV cache, SwiGLU FFN, shared or separate
 * classifier. Weights and all run state (activations, KV cache) live in
 * linear memory, allocated once at load; `forward` allocates nothing.
 *
 * The KV cache is addressed by position: `forward(token, pos)` writes the
 * key/value of `pos` and attends to 0..pos, so a caller rolls back simply
 * by continuing from an earlier position (speculative decoding does).
 */
import type { Runtime } from "../kernels/runtime.ts";
import type { LlamaConfig, ModelFile, Tensor } from "../formats/types.ts";
import { SeerError } from "../errors.ts";
import { linear, type Matrix, MAX_BATCH } from "./linear.ts";
import { rowBytes } from "../formats/validate.ts";

export interface LlamaOptions {
  /** Quantize f32/f16 matrices to q8_0 at load (rows a multiple of 32). */
  quant?: "q8_0";
  /** Positions the KV cache holds; defaults to the model's seqLen. */
  contextLength?: number;
  /**
   * Run only the first `layers` layers (then the final norm and
   * classifier): the layer-skip self-drafter. Shares the weights of `shareWith`.
   */
  layers?: number;
}

interface LayerWeights {
  attnNorm: number; // [dim] f32
  wq: Matrix; // [dim, dim]
  wk: Matrix; // [kvDim, dim]
  wv: Matrix; // [kvDim, dim]
  wo: Matrix; // [dim, dim]
  ffnNorm: number; // [dim] f32
  w1: Matrix; // gate [hidden, dim]
  w2: Matrix; // down [dim, hidden]
  w3: Matrix; // up [hidden, dim]
}

interface Weights {
  tokenEmbedding: Matrix; // [vocab, dim]
  layers: LayerWeights[];
  finalNorm: number; // [dim] f32
  classifier: Matrix; // [vocab, dim]
}

/** Activations for up to MAX_BATCH tokens, and the KV cache. Byte offsets. */
interface RunState {
  x: number; // [B, dim] residual stream
  xb: number; // [B, dim] normed input / attention output
  xb2: number; // [B, dim] projection output
  q: number; // [B, dim] queries
  hb: number; // [B, hidden] gate, then SwiGLU output
  hb2: number; // [B, hidden] up
  xq: number; // [B, max(dim, hidden)] q8_0 scratch for quantized inputs
  att: number; // [contextLength] attention scores
  logits: number; // [B, vocab]
  keyCache: number; // [layers, contextLength, kvDim]
  valueCache: number; // [layers, contextLength, kvDim]
}

export class LlamaModel {
  readonly headDim: number;
  readonly kvDim: number;
  readonly contextLength: number;
  readonly nLayers: number;
  readonly quantized: boolean;
  #state: RunState;
  #owned: number[] = [];
  #disposed = false;

  private constructor(
    readonly rt: Runtime,
    readonly config: LlamaConfig,
    readonly source: string,
    private readonly weights: Weights,
    options: LlamaOptions,
    ownedWeights: number[],
  ) {
    this.headDim = config.dim / config.nHeads;
    this.kvDim = this.headDim * config.nKvHeads;
    this.nLayers = options.layers ?? config.nLayers;
    this.contextLength = options.contextLength ?? config.seqLen;
    this.quantized = weights.layers.some((l) => l.wq.type === "q8_0");
    this.#owned.push(...ownedWeights);
    this.#state = this.#allocState();
  }

  /** Copies a model file's tensors into WASM memory and allocates its state. */
  static load(
    rt: Runtime,
    file: ModelFile,
    options: LlamaOptions = {},
  ): LlamaModel {
    const { config } = file;
    const ctx = options.contextLength ?? config.seqLen;
    if (!Number.isInteger(ctx) || ctx < 1) {
      throw new SeerError(
        "invalid_argument",
        `context length must be a positive integer, got ${ctx}`,
      );
    }
    if (options.layers !== undefined) {
      checkLayers(options.layers, config.nLayers);
    }
    const owned: number[] = [];
    const uploader = new Uploader(rt, owned, options.quant === "q8_0");
    try {
      const t = file.tensors;
      const tokenEmbedding = uploader.matrix(t.tokenEmbedding);
      const weights: Weights = {
        tokenEmbedding,
        layers: t.layers.map((l) => ({
          attnNorm: uploader.vector(l.attnNorm),
          wq: uploader.matrix(l.wq),
          wk: uploader.matrix(l.wk),
          wv: uploader.matrix(l.wv),
          wo: uploader.matrix(l.wo),
          ffnNorm: uploader.vector(l.ffnNorm),
          w1: uploader.matrix(l.w1),
          w2: uploader.matrix(l.w2),
          w3: uploader.matrix(l.w3),
        })),
        finalNorm: uploader.vector(t.finalNorm),
        classifier: t.classifier === t.tokenEmbedding
          ? tokenEmbedding
          : uploader.matrix(t.classifier),
      };
      return new LlamaModel(rt, config, file.source, weights, options, owned);
    } catch (e) {
      for (const p of owned) rt.free(p);
      throw e;
    }
  }

  /**
   * Another model over the same weights with its own run state and KV
   * cache, running only the first `layers` layers (all by default): a
   * second concurrent sequence, or the layer-skip drafter.
   */
  fork(layers = this.nLayers): LlamaModel {
    checkLayers(layers, this.config.nLayers);
    return new LlamaModel(this.rt, this.config, this.source, this.weights, {
      layers,
      contextLength: this.contextLength,
    }, []);
  }

  /** Bytes of linear memory this model's KV cache takes. */
  get kvCacheBytes(): number {
    return 2 * this.nLayers * this.contextLength * this.kvDim * 4;
  }

  /**
   * Runs one token at position `pos` and returns the logits for the next
   * one (a view into WASM memory, valid until the next call).
   */
  forward(token: number, pos: number): Float32Array {
    this.#check([token], pos);
    this.#step([token], 0, 1, pos, true);
    return this.rt.f32(this.#state.logits, this.config.vocabSize);
  }

  /**
   * Runs `tokens` at positions pos, pos+1, … in batches (prefill and
   * speculative verification). Returns the logits of every position
   * (`tokens.length × vocab`, row i predicts the token after tokens[i]) when
   * `all`, else only those after the last token. The view is valid until the
   * next call.
   */
  forwardBatch(
    tokens: ArrayLike<number>,
    pos: number,
    all = false,
  ): Float32Array {
    this.#check(tokens, pos);
    const n = tokens.length;
    const vocab = this.config.vocabSize;
    if (!all) {
      for (let i = 0; i < n; i += MAX_BATCH) {
        const m = Math.min(MAX_BATCH, n - i);
        this.#step(tokens, i, m, pos + i, i + m === n);
      }
      return this.rt.f32(this.#state.logits, vocab);
    }
    const out = new Float32Array(n * vocab);
    for (let i = 0; i < n; i += MAX_BATCH) {
      const m = Math.min(MAX_BATCH, n - i);
      this.#step(tokens, i, m, pos + i, "all");
      out.set(this.rt.f32(this.#state.logits, m * vocab), i * vocab);
    }
    return out;
  }

  /** Copies the cached keys and values of positions [from, to) (for tests). */
  kvSnapshot(
    from: number,
    to: number,
  ): { keys: Float32Array; values: Float32Array } {
    const { kvDim, contextLength } = this;
    const keys = new Float32Array(this.nLayers * (to - from) * kvDim);
    const values = new Float32Array(keys.length);
    for (let l = 0; l < this.nLayers; l++) {
      const off = (l * contextLength + from) * kvDim;
      const len = (to - from) * kvDim;
      keys.set(this.rt.f32(this.#state.keyCache + off * 4, len), l * len);
      values.set(this.rt.f32(this.#state.valueCache + off * 4, len), l * len);
    }
    return { keys, values };
  }

  /** Frees the run state and (unless shared) the weights. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const p of this.#owned) this.rt.free(p);
    this.#owned = [];
  }

  #check(tokens: ArrayLike<number>, pos: number): void {
    if (this.#disposed) {
      throw new SeerError("internal", "this model was disposed");
    }
    const vocab = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= vocab) {
        throw new SeerError(
          "invalid_argument",
          `token id ${t} is outside the vocabulary (0..${vocab - 1})`,
        );
      }
    }
    if (
      !Number.isInteger(pos) || pos < 0 ||
      pos + tokens.length > this.contextLength
    ) {
      throw new SeerError(
        "context_overflow",
        `positions ${pos}..${
          pos + tokens.length - 1
        } exceed the context of ${this.contextLength} tokens; ` +
          `use a shorter prompt or fewer new tokens, or raise the context length`,
      );
    }
  }

  #allocState(): RunState {
    const { dim, hiddenDim, vocabSize } = this.config;
    const B = MAX_BATCH;
    const alloc = (floats: number) => {
      const p = this.rt.alloc(floats * 4);
      this.#owned.push(p);
      return p;
    };
    const cache = this.nLayers * this.contextLength * this.kvDim;
    const widest = Math.max(dim, hiddenDim);
    const xqBytes = Math.ceil(B * widest / 32) * 34;
    return {
      x: alloc(B * dim),
      xb: alloc(B * dim),
      xb2: alloc(B * dim),
      q: alloc(B * dim),
      hb: alloc(B * hiddenDim),
      hb2: alloc(B * hiddenDim),
      xq: alloc(Math.ceil(xqBytes / 4)),
      att: alloc(this.contextLength),
      logits: alloc(B * vocabSize),
      keyCache: alloc(cache),
      valueCache: alloc(cache),
    };
  }

  /**
   * The transformer over `m` (≤ MAX_BATCH) consecutive tokens
   * tokens[start..start+m) at positions pos..pos+m-1. Writes logits for the
   * last row (`true`), every row (`"all"`) or none (`false`).
   */
  #step(
    tokens: ArrayLike<number>,
    start: number,
    m: number,
    pos: number,
    logits: boolean | "all",
  ): void {
    const k = this.rt.k;
    const s = this.#state;
    const w = this.weights;
    const { dim, hiddenDim, nHeads, nKvHeads, normEps, ropeTheta } =
      this.config;
    const { headDim, kvDim, contextLength } = this;
    const group = nHeads / nKvHeads;

    // Token embeddings into the residual stream.
    const emb = w.tokenEmbedding;
    const embRow = rowBytes(emb.type, dim);
    for (let i = 0; i < m; i++) {
      const src = emb.ptr + tokens[start + i] * embRow;
      const dst = s.x + i * dim * 4;
      if (emb.type === "f32") {
        this.rt.view(Uint8Array, 0, this.rt.memory.buffer.byteLength)
          .copyWithin(dst, src, src + embRow);
      } else {
        k.dequantize_q8_0(dst, src, dim);
      }
    }

    for (let l = 0; l < this.nLayers; l++) {
      const lw = w.layers[l];
      const layerCache = l * contextLength * kvDim * 4;
      const kRows = s.keyCache + layerCache + pos * kvDim * 4;
      const vRows = s.valueCache + layerCache + pos * kvDim * 4;

      // Attention: normed input → q, and k/v straight into the cache.
      for (let i = 0; i < m; i++) {
        const off = i * dim * 4;
        k.rmsnorm_f32(s.xb + off, s.x + off, lw.attnNorm, dim, normEps);
      }
      linear(this.rt, s.q, lw.wq, s.xb, m, dim, s.xq);
      linear(this.rt, kRows, lw.wk, s.xb, m, kvDim, s.xq, true);
      linear(this.rt, vRows, lw.wv, s.xb, m, kvDim, s.xq, true);
      for (let i = 0; i < m; i++) {
        k.rope_f32(s.q + i * dim * 4, nHeads, headDim, pos + i, ropeTheta);
        k.rope_f32(
          kRows + i * kvDim * 4,
          nKvHeads,
          headDim,
          pos + i,
          ropeTheta,
        );
      }
      // Each row attends causally to positions 0..pos+i; each KV head
      // serves `group` consecutive query heads.
      for (let i = 0; i < m; i++) {
        for (let g = 0; g < nKvHeads; g++) {
          const qOff = (i * dim + g * group * headDim) * 4;
          k.attention_f32(
            s.xb + qOff,
            s.q + qOff,
            s.keyCache + layerCache + g * headDim * 4,
            s.valueCache + layerCache + g * headDim * 4,
            s.att,
            group,
            headDim,
            pos + i + 1,
            kvDim,
          );
        }
      }
      linear(this.rt, s.xb2, lw.wo, s.xb, m, dim, s.xq);
      k.add_f32(s.x, s.x, s.xb2, m * dim);

      // FFN: x += W2 (silu(W1 xn) * W3 xn).
      for (let i = 0; i < m; i++) {
        const off = i * dim * 4;
        k.rmsnorm_f32(s.xb + off, s.x + off, lw.ffnNorm, dim, normEps);
      }
      linear(this.rt, s.hb, lw.w1, s.xb, m, hiddenDim, s.xq);
      linear(this.rt, s.hb2, lw.w3, s.xb, m, hiddenDim, s.xq, true);
      k.swiglu_f32(s.hb, s.hb, s.hb2, m * hiddenDim);
      linear(this.rt, s.xb, lw.w2, s.hb, m, dim, s.xq);
      k.add_f32(s.x, s.x, s.xb, m * dim);
    }

    if (logits === false) return;
    const first = logits === "all" ? 0 : m - 1;
    const rows = m - first;
    for (let i = 0; i < rows; i++) {
      k.rmsnorm_f32(
        s.xb + i * dim * 4,
        s.x + (first + i) * dim * 4,
        w.finalNorm,
        dim,
        normEps,
      );
    }
    linear(
      this.rt,
      s.logits,
      w.classifier,
      s.xb,
      rows,
      this.config.vocabSize,
      s.xq,
    );
  }
}

function checkLayers(layers: number, nLayers: number): void {
  if (!Number.isInteger(layers) || layers < 1 || layers > nLayers) {
    throw new SeerError(
      "invalid_argument",
      `layer count must be an integer from 1 to ${nLayers}, got ${layers}`,
    );
  }
}

/** Copies tensors into linear memory, converting to what the kernels take. */
class Uploader {
  constructor(
    private readonly rt: Runtime,
    private readonly owned: number[],
    private readonly quantize: boolean,
  ) {}

  #alloc(bytes: number): number {
    const p = this.rt.alloc(bytes);
    this.owned.push(p);
    return p;
  }

  #copy(data: Uint8Array): number {
    const p = this.rt.alloc(data.length);
    new Uint8Array(this.rt.memory.buffer, p, data.length).set(data);
    return p;
  }

  /** A tensor as f32 in a fresh block (kept). */
  #f32(t: Tensor): number {
    const n = t.rows * t.cols;
    if (t.type === "f32") {
      const p = this.#copy(t.data);
      this.owned.push(p);
      return p;
    }
    const out = this.#alloc(n * 4);
    const tmp = this.#copy(t.data);
    if (t.type === "f16") this.rt.k.f16_to_f32(out, tmp, n);
    else this.rt.k.dequantize_q8_0(out, tmp, n);
    this.rt.free(tmp);
    return out;
  }

  vector(t: Tensor): number {
    return this.#f32(t);
  }

  matrix(t: Tensor): Matrix {
    const { rows, cols } = t;
    if (t.type === "q8_0") {
      const p = this.#copy(t.data);
      this.owned.push(p);
      return { type: "q8_0", ptr: p, rows, cols };
    }
    const f32 = this.#f32(t);
    if (!this.quantize || cols % 32 !== 0) {
      return { type: "f32", ptr: f32, rows, cols };
    }
    const q = this.#alloc(rows * rowBytes("q8_0", cols));
    this.rt.k.quantize_q8_0(q, f32, rows * cols);
    this.owned.splice(this.owned.indexOf(f32), 1);
    this.rt.free(f32);
    return { type: "q8_0", ptr: q, rows, cols };
  }
}
