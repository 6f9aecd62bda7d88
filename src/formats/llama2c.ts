/**
 * llama2.c checkpoints, the legacy format (export version 0): a header of 7
 * little-endian int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len) then f32 tensors in one fixed order, each stacked
 * over layers:
 *
 *   token_embedding [vocab, dim]
 *   rms_att [L, dim]   wq [L, dim, dim]   wk [L, kv_dim, dim]   wv [L, kv_dim, dim]
 *   wo [L, dim, dim]   rms_ffn [L, dim]   w1 [L, hidden, dim]   w2 [L, dim, hidden]
 *   w3 [L, hidden, dim]   rms_final [dim]
 *   freq_cis_real [seq_len, head/2]   freq_cis_imag [seq_len, head/2]
 *   wcls [vocab, dim]   (only when vocab_size < 0: a separate classifier)
 *
 * Matrices are [rows, cols] with y = W x. The two RoPE tables are unused
 * (everyone computes RoPE on the fly) but still written and skipped.
 * The format has no magic, so a header is trusted only after every field
 * and the file size agree with it.
 */
import type {
  LayerTensors,
  LlamaConfig,
  LlamaTensors,
  ModelFile,
  Tensor,
} from "./types.ts";
import { ByteReader, invalidModel } from "./bytes.ts";
import { checkConfig, LIMITS } from "./validate.ts";
import { SeerError } from "../errors.ts";

export const LLAMA2C_HEADER_BYTES = 28;

/** "ak42": the magic of llama2.c's newer export versions (1: f32, 2: int8). */
const AK42 = 0x616b3432;

export type Llama2cSectionKind = "weight" | "norm" | "rope_real" | "rope_imag";

export interface Llama2cSection {
  name: string;
  kind: Llama2cSectionKind;
  /** Stacked over layers (1 when not). */
  layers: number;
  rows: number;
  cols: number;
}

export interface ReadOptions {
  /**
   * Overrides the context length the file declares (positions the model may
   * use); the file's own value is kept in the error messages only.
   */
  contextLength?: number;
}

/** The checkpoint's sections after the header, in file order. */
export function llama2cLayout(
  c: LlamaConfig,
  sharedClassifier: boolean,
): Llama2cSection[] {
  const head = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * head;
  const L = c.nLayers;
  const s = (
    name: string,
    kind: Llama2cSectionKind,
    layers: number,
    rows: number,
    cols: number,
  ): Llama2cSection => ({ name, kind, layers, rows, cols });
  const out = [
    s("token_embedding", "weight", 1, c.vocabSize, c.dim),
    s("rms_att", "norm", L, 1, c.dim),
    s("wq", "weight", L, c.dim, c.dim),
    s("wk", "weight", L, kvDim, c.dim),
    s("wv", "weight", L, kvDim, c.dim),
    s("wo", "weight", L, c.dim, c.dim),
    s("rms_ffn", "norm", L, 1, c.dim),
    s("w1", "weight", L, c.hiddenDim, c.dim),
    s("w2", "weight", L, c.dim, c.hiddenDim),
    s("w3", "weight", L, c.hiddenDim, c.dim),
    s("rms_final", "norm", 1, 1, c.dim),
    s("freq_cis_real", "rope_real", 1, c.seqLen, head / 2),
    s("freq_cis_imag", "rope_imag", 1, c.seqLen, head / 2),
  ];
  if (!sharedClassifier) out.push(s("wcls", "weight", 1, c.vocabSize, c.dim));
  return out;
}

/** Floats in a section. */
export function sectionFloats(s: Llama2cSection): number {
  return s.layers * s.rows * s.cols;
}

/** Total file size the header implies. */
export function llama2cFileBytes(
  c: LlamaConfig,
  sharedClassifier: boolean,
): number {
  let floats = 0;
  for (const s of llama2cLayout(c, sharedClassifier)) {
    floats += sectionFloats(s);
  }
  return LLAMA2C_HEADER_BYTES + 4 * floats;
}

/** Reads a legacy llama2.c checkpoint; tensors are views into `bytes`. */
export function readLlama2c(
  bytes: Uint8Array,
  source: string,
  options: ReadOptions = {},
): ModelFile {
  const r = new ByteReader(bytes, source);
  if (bytes.byteLength >= 4 && r.view.getUint32(0, true) === AK42) {
    const version = bytes.byteLength >= 8 ? r.view.getInt32(4, true) : "?";
    throw r.fail(
      `this is a llama2.c checkpoint of export version ${version} (magic "ak42"); ` +
        `seer reads the legacy version 0 (export.py --version 0) and GGUF`,
    );
  }
  const header = [
    "dim",
    "hidden_dim",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "vocab_size",
    "seq_len",
  ].map((name) => r.i32(`header field ${name}`));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = header;
  // A negative vocab_size is llama2.c's flag for an unshared classifier.
  const sharedClassifier = vocab > 0;
  const config: LlamaConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocab),
    seqLen,
    ropeTheta: 10000,
    normEps: 1e-5,
  };
  checkConfig(config, source);

  const layout = llama2cLayout(config, sharedClassifier);
  const full = llama2cFileBytes(config, sharedClassifier);
  // The RoPE tables come last when the classifier is shared; a file that
  // stops before them still has every tensor the model needs.
  const ropeFloats = config.seqLen * (config.dim / config.nHeads);
  const withoutRope = full - 4 * ropeFloats;
  const ok = bytes.byteLength === full ||
    (sharedClassifier && bytes.byteLength === withoutRope);
  if (!ok) {
    throw r.fail(
      `the file has ${bytes.byteLength} bytes, but a llama2.c checkpoint with header ` +
        `[${
          header.join(", ")
        }] (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; ` +
        `${
          sharedClassifier ? "shared" : "separate"
        } classifier) has ${full}. ` +
        (bytes.byteLength < full
          ? "The file is truncated."
          : "The header does not describe this file: it is corrupt or not a legacy llama2.c checkpoint."),
    );
  }

  const sections = new Map<string, Uint8Array>();
  for (const s of layout) {
    const n = 4 * sectionFloats(s);
    if (r.remaining === 0 && s.kind !== "weight") break; // missing RoPE tables
    sections.set(s.name, r.take(n, `tensor ${s.name}`));
  }

  const f32 = (data: Uint8Array, rows: number, cols: number): Tensor => ({
    type: "f32",
    rows,
    cols,
    data,
  });
  const slice = (name: string, layer: number): Tensor => {
    const s = layout.find((x) => x.name === name)!;
    const per = 4 * s.rows * s.cols;
    const all = sections.get(name)!;
    return f32(all.subarray(layer * per, (layer + 1) * per), s.rows, s.cols);
  };
  const layers: LayerTensors[] = [];
  for (let l = 0; l < config.nLayers; l++) {
    layers.push({
      attnNorm: slice("rms_att", l),
      wq: slice("wq", l),
      wk: slice("wk", l),
      wv: slice("wv", l),
      wo: slice("wo", l),
      ffnNorm: slice("rms_ffn", l),
      w1: slice("w1", l),
      w2: slice("w2", l),
      w3: slice("w3", l),
    });
  }
  const tokenEmbedding = slice("token_embedding", 0);
  const tensors: LlamaTensors = {
    tokenEmbedding,
    layers,
    finalNorm: slice("rms_final", 0),
    classifier: sharedClassifier ? tokenEmbedding : slice("wcls", 0),
  };
  if (options.contextLength !== undefined) {
    config.seqLen = checkContextLength(options.contextLength, source);
  }
  return { source, format: "llama2c", config, tensors };
}

/** Validates a user's context-length override. */
export function checkContextLength(n: number, source: string): number {
  if (!Number.isInteger(n) || n < 1 || n > LIMITS.seqLen) {
    throw invalidModel(
      source,
      `context length override ${n} must be an integer from 1 to ${LIMITS.seqLen}`,
    );
  }
  return n;
}

// ---------------------------------------------------------------------------
// Writing

/** The 28-byte header; vocab_size is written negative for a separate classifier. */
export function llama2cHeader(
  c: LlamaConfig,
  sharedClassifier: boolean,
): Uint8Array {
  const out = new Uint8Array(LLAMA2C_HEADER_BYTES);
  const v = new DataView(out.buffer);
  const fields = [
    c.dim,
    c.hiddenDim,
    c.nLayers,
    c.nHeads,
    c.nKvHeads,
    sharedClassifier ? c.vocabSize : -c.vocabSize,
    c.seqLen,
  ];
  fields.forEach((x, i) => v.setInt32(4 * i, x, true));
  return out;
}

/**
 * The legacy RoPE tables (cos and sin of pos · theta^(−2i/head)) that the
 * format still carries; written so older readers that use them get the
 * values they expect.
 */
export function ropeTable(c: LlamaConfig, kind: "real" | "imag"): Float32Array {
  const half = c.dim / c.nHeads / 2;
  const out = new Float32Array(c.seqLen * half);
  for (let p = 0; p < c.seqLen; p++) {
    for (let i = 0; i < half; i++) {
      const freq = 1 / Math.pow(c.ropeTheta, (2 * i) / (2 * half));
      const a = p * freq;
      out[p * half + i] = kind === "real" ? Math.cos(a) : Math.sin(a);
    }
  }
  return out;
}

/** The bytes of f32 tensor `t`, refusing other types (the format is f32 only). */
function f32Bytes(t: Tensor, what: string): Uint8Array {
  if (t.type !== "f32") {
    throw new SeerError(
      "invalid_argument",
      `cannot write ${what} to a llama2.c checkpoint: the format holds f32 tensors only and this one is ${t.type}`,
    );
  }
  return t.data;
}

/**
 * The checkpoint as a sequence of byte chunks in file order (header first),
 * so a caller can stream it to disk. Tensors must be f32.
 */
export function* llama2cChunks(
  model: Pick<ModelFile, "config" | "tensors">,
): Generator<Uint8Array> {
  const { config: c, tensors: t } = model;
  const shared = t.classifier === t.tokenEmbedding;
  yield llama2cHeader(c, shared);
  const each = (pick: (l: LayerTensors) => Tensor, name: string) =>
    t.layers.map((l, i) => f32Bytes(pick(l), `layer ${i} ${name}`));
  yield f32Bytes(t.tokenEmbedding, "token embedding");
  yield* each((l) => l.attnNorm, "attention norm");
  yield* each((l) => l.wq, "wq");
  yield* each((l) => l.wk, "wk");
  yield* each((l) => l.wv, "wv");
  yield* each((l) => l.wo, "wo");
  yield* each((l) => l.ffnNorm, "ffn norm");
  yield* each((l) => l.w1, "w1");
  yield* each((l) => l.w2, "w2");
  yield* each((l) => l.w3, "w3");
  yield f32Bytes(t.finalNorm, "final norm");
  for (const kind of ["real", "imag"] as const) {
    const table = ropeTable(c, kind);
    yield new Uint8Array(table.buffer, table.byteOffset, table.byteLength);
  }
  if (!shared) yield f32Bytes(t.classifier, "classifier");
}

/** The whole checkpoint in memory (for small models and tests). */
export function writeLlama2c(
  model: Pick<ModelFile, "config" | "tensors">,
): Uint8Array {
  const chunks = [...llama2cChunks(model)];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
