/**
 * What every model-file reader produces: a Llama-family config, its tensors
 * as raw bytes in their stored type, and (for GGUF) the vocabulary. The
 * model layer copies these into WASM memory; readers know nothing of WASM.
 */

export interface LlamaConfig {
  /** Width of the residual stream. */
  dim: number;
  /** Width of the FFN's hidden layer. */
  hiddenDim: number;
  nLayers: number;
  /** Query heads; headDim = dim / nHeads. */
  nHeads: number;
  /** Key/value heads (≤ nHeads, dividing it: grouped-query attention). */
  nKvHeads: number;
  vocabSize: number;
  /** Context length the model was trained with (positions 0..seqLen-1). */
  seqLen: number;
  /** RoPE base (10000 unless the file says otherwise). */
  ropeTheta: number;
  /** RMSNorm epsilon (1e-5 for llama2.c). */
  normEps: number;
}

export type TensorType = "f32" | "f16" | "q8_0";

/** A 2-D (or 1-D, rows = 1) tensor, row-major: `rows` rows of `cols`. */
export interface Tensor {
  type: TensorType;
  rows: number;
  cols: number;
  /**
   * Raw bytes in the stored type: f32/f16 little-endian, q8_0 in GGUF's
   * 34-byte blocks (f16 scale + 32 int8) per 32 values of a row.
   */
  data: Uint8Array;
}

export interface LayerTensors {
  attnNorm: Tensor; // [1, dim]
  wq: Tensor; // [nHeads * headDim, dim]
  wk: Tensor; // [nKvHeads * headDim, dim]
  wv: Tensor; // [nKvHeads * headDim, dim]
  wo: Tensor; // [dim, nHeads * headDim]
  ffnNorm: Tensor; // [1, dim]
  w1: Tensor; // gate [hiddenDim, dim]
  w2: Tensor; // down [dim, hiddenDim]
  w3: Tensor; // up   [hiddenDim, dim]
}

export interface LlamaTensors {
  tokenEmbedding: Tensor; // [vocabSize, dim]
  layers: LayerTensors[];
  finalNorm: Tensor; // [1, dim]
  /** [vocabSize, dim]; the same object as tokenEmbedding when shared. */
  classifier: Tensor;
}

/** A vocabulary as both formats carry it. */
export interface Vocabulary {
  /** Token pieces; "▁" is not translated: llama2.c uses " ", GGUF "▁". */
  tokens: string[];
  /** Merge scores (higher merges first). */
  scores: Float32Array;
  /** GGUF token types (1 normal, 2 unknown, 3 control, 6 byte) when known. */
  types?: Int32Array;
  bosId: number;
  eosId: number;
  /** Whether the space marker is "▁" (GGUF/sentencepiece) or " " (llama2.c). */
  spaceMarker: "▁" | " ";
  /** Whether prompts start with BOS (GGUF's add_bos_token); default true. */
  addBos?: boolean;
  /** Whether non-empty text gets a leading space (add_space_prefix); default true. */
  addSpacePrefix?: boolean;
}

export interface ModelFile {
  /** Path or name, for error messages. */
  source: string;
  format: "llama2c" | "gguf";
  config: LlamaConfig;
  tensors: LlamaTensors;
  /** Present when the file embeds its tokenizer (GGUF). */
  vocabulary?: Vocabulary;
}
