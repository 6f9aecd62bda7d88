/**
 * GGUF v3, as llama.cpp writes it:
 *
 *   "GGUF"  u32 version (3)  u64 tensor_count  u64 kv_count
 *   kv_count × (string key, u32 value_type, value)
 *   tensor_count × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
 *   padding to general.alignment (default 32), then the data section;
 *   each tensor's offset is relative to it and a multiple of the alignment.
 *
 * Strings are u64 length + UTF-8 bytes; arrays are u32 item type, u64
 * count, items. Dimensions run innermost first: a row-major [rows, cols]
 * matrix is ne = [cols, rows].
 *
 * `parseGguf` reads any GGUF v3 file into metadata and tensor infos;
 * `readGguf` maps a `llama`-architecture file onto the ModelFile contract,
 * looking tensors up by name. `ggufChunks`/`writeGguf` write one, and
 * `llamaGgufSpec` lays a llama model out with llama.cpp's names and keys.
 */
import type {
  LayerTensors,
  LlamaConfig,
  ModelFile,
  Tensor,
  TensorType,
  Vocabulary,
} from "./types.ts";
import { ByteReader, invalidModel } from "./bytes.ts";
import { checkConfig, checkTensor, rowBytes } from "./validate.ts";
import { checkContextLength, type ReadOptions } from "./llama2c.ts";
import { SeerError } from "../errors.ts";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Value types in the order of their ids (0..12). */
export const GGUF_VALUE_TYPES = [
  "u8",
  "i8",
  "u16",
  "i16",
  "u32",
  "i32",
  "f32",
  "bool",
  "string",
  "array",
  "u64",
  "i64",
  "f64",
] as const;
export type GgufValueType = typeof GGUF_VALUE_TYPES[number];

/** u64/i64 become numbers when they fit a double exactly, else bigints. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

export interface GgufEntry {
  type: GgufValueType;
  /** For arrays: the type of every item. */
  itemType?: GgufValueType;
  value: GgufValue;
}

/** GGML tensor type ids; seer reads the first three. */
const GGML_TYPES: Record<number, string> = {
  0: "F32",
  1: "F16",
  8: "Q8_0",
  2: "Q4_0",
  3: "Q4_1",
  6: "Q5_0",
  7: "Q5_1",
  9: "Q8_1",
  10: "Q2_K",
  11: "Q3_K",
  12: "Q4_K",
  13: "Q5_K",
  14: "Q6_K",
  15: "Q8_K",
  16: "IQ2_XXS",
  17: "IQ2_XS",
  18: "IQ3_XXS",
  19: "IQ1_S",
  20: "IQ4_NL",
  21: "IQ3_S",
  22: "IQ2_S",
  23: "IQ4_XS",
  24: "I8",
  25: "I16",
  26: "I32",
  27: "I64",
  28: "F64",
  29: "IQ1_M",
  30: "BF16",
  34: "TQ1_0",
  35: "TQ2_0",
  39: "MXFP4",
};
const SUPPORTED: Record<number, TensorType> = { 0: "f32", 1: "f16", 8: "q8_0" };
const TYPE_IDS: Record<TensorType, number> = { f32: 0, f16: 1, q8_0: 8 };

export interface GgufTensorInfo {
  name: string;
  /** ne, innermost first. */
  dims: number[];
  ggmlType: number;
  /** "F32", "Q4_K", …, for messages. */
  typeName: string;
  /** Our type when seer reads it, else undefined. */
  type?: TensorType;
  /** Offset in the data section. */
  offset: number;
  /** The tensor's bytes (a view into the file), for supported types. */
  data?: Uint8Array;
}

export interface GgufFile {
  version: number;
  alignment: number;
  metadata: Map<string, GgufEntry>;
  tensors: Map<string, GgufTensorInfo>;
  /** Where the data section starts in the file. */
  dataOffset: number;
}

// Smallest encodings, to turn a count into a bound on the bytes it needs.
const MIN_BYTES: Record<GgufValueType, number> = {
  u8: 1,
  i8: 1,
  bool: 1,
  u16: 2,
  i16: 2,
  u32: 4,
  i32: 4,
  f32: 4,
  u64: 8,
  i64: 8,
  f64: 8,
  string: 8,
  array: 12,
};
const MAX_NESTING = 8; // arrays of arrays: deeper would only be an attack on the stack
const MAX_DIMS = 4; // GGML_MAX_DIMS

function safe(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) &&
      v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

function readString(r: ByteReader, what: string): string {
  const n = r.count(`length of ${what}`, r.remaining);
  return r.utf8(n, what);
}

function valueType(r: ByteReader, what: string): GgufValueType {
  const at = r.pos;
  const id = r.u32(`type of ${what}`);
  const t = GGUF_VALUE_TYPES[id];
  if (t === undefined) {
    throw r.fail(
      `${what} has value type ${id} at byte ${at}; GGUF defines 0..12. The file is corrupt.`,
    );
  }
  return t;
}

function readValue(
  r: ByteReader,
  type: GgufValueType,
  what: string,
  depth: number,
): GgufEntry {
  switch (type) {
    case "u8":
      return { type, value: r.u8(what) };
    case "i8":
      return { type, value: r.i8(what) };
    case "u16":
      return { type, value: r.u16(what) };
    case "i16":
      return { type, value: r.i16(what) };
    case "u32":
      return { type, value: r.u32(what) };
    case "i32":
      return { type, value: r.i32(what) };
    case "f32":
      return { type, value: r.f32(what) };
    case "f64":
      return { type, value: r.f64(what) };
    case "u64":
      return { type, value: safe(r.u64(what)) };
    case "i64":
      return { type, value: safe(r.i64(what)) };
    case "bool":
      return { type, value: r.u8(what) !== 0 };
    case "string":
      return { type, value: readString(r, what) };
    case "array": {
      if (depth >= MAX_NESTING) {
        throw r.fail(`${what} nests arrays deeper than ${MAX_NESTING}`);
      }
      const itemType = valueType(r, `items of ${what}`);
      const n = r.count(
        `item count of ${what}`,
        Math.floor(r.remaining / MIN_BYTES[itemType]),
      );
      const items: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) {
        items[i] = readValue(r, itemType, `${what}[${i}]`, depth + 1).value;
      }
      return { type, itemType, value: items };
    }
  }
}

/** Reads a GGUF v3 file's structure; tensor data stays in `bytes`. */
export function parseGguf(bytes: Uint8Array, source: string): GgufFile {
  const r = new ByteReader(bytes, source);
  const magic = r.u32("magic");
  if (magic !== GGUF_MAGIC) {
    throw r.fail(
      `not a GGUF file: the magic is 0x${
        magic.toString(16).padStart(8, "0")
      }, not "GGUF"`,
    );
  }
  const version = r.u32("version");
  if (version !== GGUF_VERSION) {
    throw r.fail(
      `GGUF version ${version} is not supported; seer reads version ${GGUF_VERSION}. ` +
        `Re-save the file with a current llama.cpp (e.g. llama-quantize … COPY).`,
    );
  }
  // Bound the counts by what the rest of the file could hold at minimum.
  const nTensors = r.count("tensor count", Math.floor(r.remaining / 24));
  const nKv = r.count("metadata count", Math.floor(r.remaining / 13));

  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < nKv; i++) {
    const key = readString(r, `metadata key #${i}`);
    if (metadata.has(key)) throw r.fail(`metadata key ${key} appears twice`);
    const type = valueType(r, `metadata ${key}`);
    metadata.set(key, readValue(r, type, `metadata ${key}`, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const a = metadata.get("general.alignment");
  if (a !== undefined) {
    const v = a.value;
    if (
      a.type !== "u32" || typeof v !== "number" || v === 0 ||
      (v & (v - 1)) !== 0
    ) {
      throw r.fail(
        `general.alignment must be a u32 power of two, found ${a.type} ${v}`,
      );
    }
    alignment = v;
  }

  const infos: GgufTensorInfo[] = [];
  const tensors = new Map<string, GgufTensorInfo>();
  for (let i = 0; i < nTensors; i++) {
    const name = readString(r, `name of tensor #${i}`);
    if (tensors.has(name)) throw r.fail(`tensor ${name} appears twice`);
    const nDims = r.u32(`dimension count of tensor ${name}`);
    if (nDims < 1 || nDims > MAX_DIMS) {
      throw r.fail(
        `tensor ${name} has ${nDims} dimensions; GGUF allows 1 to ${MAX_DIMS}`,
      );
    }
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const ne = r.count(`dimension ${d} of tensor ${name}`, 2 ** 40);
      if (ne === 0) throw r.fail(`tensor ${name} has a dimension of size 0`);
      dims.push(ne);
      elements *= ne;
    }
    if (elements > Number.MAX_SAFE_INTEGER) {
      throw r.fail(`tensor ${name} has an absurd size ${dims.join("×")}`);
    }
    const typeAt = r.pos;
    const ggmlType = r.u32(`type of tensor ${name}`);
    const typeName = GGML_TYPES[ggmlType];
    if (typeName === undefined) {
      throw r.fail(
        `tensor ${name} has unknown GGML type ${ggmlType} (at byte ${typeAt}); ` +
          `the file is corrupt or from a newer llama.cpp. seer reads F32, F16 and Q8_0.`,
      );
    }
    const offset = r.count(`data offset of tensor ${name}`, bytes.byteLength);
    if (offset % alignment !== 0) {
      throw r.fail(
        `tensor ${name} starts at data offset ${offset}, not a multiple of the alignment ${alignment}`,
      );
    }
    const info: GgufTensorInfo = {
      name,
      dims,
      ggmlType,
      typeName,
      type: SUPPORTED[ggmlType],
      offset,
    };
    infos.push(info);
    tensors.set(name, info);
  }

  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const dataBytes = bytes.byteLength - dataOffset;
  for (const t of infos) {
    if (t.type === undefined) continue; // unsupported: refused if a model needs it
    const row = rowBytes(t.type, t.dims[0]);
    if (row < 0) {
      throw r.fail(
        `tensor ${t.name} is Q8_0 with rows of ${
          t.dims[0]
        } values; Q8_0 rows must be a multiple of 32`,
      );
    }
    const n = row * (t.dims.reduce((p, x) => p * x, 1) / t.dims[0]);
    if (dataBytes < 0 || t.offset + n > dataBytes) {
      throw r.fail(
        `tensor ${t.name} (${t.typeName} ${
          t.dims.join("×")
        }, ${n} bytes at data offset ${t.offset}) ends past the end of the file ` +
          `(data section of ${
            Math.max(0, dataBytes)
          } bytes); the file is truncated`,
      );
    }
    t.data = bytes.subarray(dataOffset + t.offset, dataOffset + t.offset + n);
  }
  return { version, alignment, metadata, tensors, dataOffset };
}

// ---------------------------------------------------------------------------
// The llama architecture

function describe(e: GgufEntry): string {
  const v = e.value;
  return e.type === "array"
    ? `an array of ${(v as GgufValue[]).length} ${e.itemType}`
    : `${e.type} ${String(v)}`;
}

class Meta {
  constructor(
    readonly file: GgufFile,
    readonly source: string,
  ) {}

  fail(problem: string): SeerError {
    return invalidModel(this.source, problem);
  }

  get(key: string): GgufEntry | undefined {
    return this.file.metadata.get(key);
  }

  string(key: string): string | undefined {
    const e = this.get(key);
    if (e === undefined) return undefined;
    if (e.type !== "string") {
      throw this.fail(`${key} should be a string, found ${describe(e)}`);
    }
    return e.value as string;
  }

  /** An integer key; an array is accepted when all its items agree. */
  int(key: string, required: boolean): number | undefined {
    const e = this.get(key);
    if (e === undefined) {
      if (required) {
        throw this.fail(
          `metadata ${key} is missing; a llama GGUF file must have it`,
        );
      }
      return undefined;
    }
    let v = e.value;
    if (e.type === "array") {
      const items = v as GgufValue[];
      if (items.length > 0 && items.every((x) => x === items[0])) v = items[0];
      else {
        throw this.fail(
          `${key} differs between layers (${
            describe(e)
          }); seer needs one value for all layers`,
        );
      }
    }
    if (typeof v !== "number" || !Number.isInteger(v)) {
      throw this.fail(`${key} should be an integer, found ${describe(e)}`);
    }
    return v;
  }

  float(key: string): number | undefined {
    const e = this.get(key);
    if (e === undefined) return undefined;
    if (typeof e.value !== "number") {
      throw this.fail(`${key} should be a number, found ${describe(e)}`);
    }
    return e.value;
  }

  bool(key: string): boolean | undefined {
    const e = this.get(key);
    if (e === undefined) return undefined;
    if (typeof e.value !== "boolean") {
      throw this.fail(`${key} should be a bool, found ${describe(e)}`);
    }
    return e.value;
  }

  array(key: string, itemTypes: GgufValueType[]): GgufValue[] | undefined {
    const e = this.get(key);
    if (e === undefined) return undefined;
    if (e.type !== "array" || !itemTypes.includes(e.itemType!)) {
      throw this.fail(
        `${key} should be an array of ${itemTypes.join(" or ")}, found ${
          describe(e)
        }`,
      );
    }
    return e.value as GgufValue[];
  }
}

/** llama.cpp's tensor names for the llama architecture. */
export const LLAMA_TENSOR_NAMES = {
  tokenEmbedding: "token_embd.weight",
  finalNorm: "output_norm.weight",
  classifier: "output.weight",
  layer: (i: number) => ({
    attnNorm: `blk.${i}.attn_norm.weight`,
    wq: `blk.${i}.attn_q.weight`,
    wk: `blk.${i}.attn_k.weight`,
    wv: `blk.${i}.attn_v.weight`,
    wo: `blk.${i}.attn_output.weight`,
    ffnNorm: `blk.${i}.ffn_norm.weight`,
    w1: `blk.${i}.ffn_gate.weight`,
    w2: `blk.${i}.ffn_down.weight`,
    w3: `blk.${i}.ffn_up.weight`,
  }),
};

/** The vocabulary in tokenizer.ggml.*, or undefined when the file has none. */
export function ggufVocabulary(
  file: GgufFile,
  source: string,
): Vocabulary | undefined {
  const m = new Meta(file, source);
  const model = m.string("tokenizer.ggml.model");
  if (model === undefined) return undefined;
  if (model !== "llama") {
    throw m.fail(
      `tokenizer.ggml.model is "${model}"; seer reads sentencepiece ("llama") vocabularies only`,
    );
  }
  const tokens = m.array("tokenizer.ggml.tokens", ["string"]);
  if (tokens === undefined || tokens.length === 0) {
    throw m.fail("tokenizer.ggml.tokens is missing or empty");
  }
  const n = tokens.length;
  const scoresIn = m.array("tokenizer.ggml.scores", ["f32"]);
  if (scoresIn !== undefined && scoresIn.length !== n) {
    throw m.fail(
      `tokenizer.ggml.scores has ${scoresIn.length} items for ${n} tokens`,
    );
  }
  const typesIn = m.array("tokenizer.ggml.token_type", ["i32", "u32"]);
  if (typesIn !== undefined && typesIn.length !== n) {
    throw m.fail(
      `tokenizer.ggml.token_type has ${typesIn.length} items for ${n} tokens`,
    );
  }
  const id = (key: string, fallback: number) => {
    const v = m.int(key, false) ?? fallback;
    if (v < 0 || v >= n) {
      throw m.fail(`${key} is ${v}, outside the ${n}-token vocabulary`);
    }
    return v;
  };
  const vocab: Vocabulary = {
    tokens: tokens as string[],
    // Without scores every merge ties; sentencepiece files always have them.
    scores: scoresIn
      ? Float32Array.from(scoresIn as number[])
      : new Float32Array(n),
    types: typesIn ? Int32Array.from(typesIn as number[]) : undefined,
    // llama.cpp's defaults for sentencepiece vocabularies.
    bosId: id("tokenizer.ggml.bos_token_id", 1),
    eosId: id("tokenizer.ggml.eos_token_id", 2),
    spaceMarker: "▁",
  };
  const addBos = m.bool("tokenizer.ggml.add_bos_token");
  if (addBos !== undefined) vocab.addBos = addBos;
  const addSpace = m.bool("tokenizer.ggml.add_space_prefix");
  if (addSpace !== undefined) vocab.addSpacePrefix = addSpace;
  return vocab;
}

/**
 * Reads a `llama` GGUF file into the ModelFile contract. The context length
 * comes from `llama.context_length` unless `options.contextLength` overrides
 * it (llama.cpp's llama2.c converter writes 128 whatever the model saw).
 */
export function readGguf(
  bytes: Uint8Array,
  source: string,
  options: ReadOptions = {},
): ModelFile {
  const file = parseGguf(bytes, source);
  const m = new Meta(file, source);
  const arch = m.string("general.architecture");
  if (arch === undefined) {
    throw m.fail("general.architecture is missing; seer reads llama models");
  }
  if (arch !== "llama") {
    throw m.fail(
      `the architecture is "${arch}"; seer reads the "llama" architecture only`,
    );
  }
  const tensor = (name: string): GgufTensorInfo => {
    const t = file.tensors.get(name);
    if (t === undefined) throw m.fail(`tensor ${name} is missing`);
    return t;
  };
  const embd = tensor(LLAMA_TENSOR_NAMES.tokenEmbedding);
  const dim = m.int("llama.embedding_length", true)!;
  const nHeads = m.int("llama.attention.head_count", true)!;
  // Only needed when the caller does not say (checked after the config).
  const contextLength = m.int(
    "llama.context_length",
    options.contextLength === undefined,
  ) ?? 1;
  const config: LlamaConfig = {
    dim,
    hiddenDim: m.int("llama.feed_forward_length", true)!,
    nLayers: m.int("llama.block_count", true)!,
    nHeads,
    nKvHeads: m.int("llama.attention.head_count_kv", false) ?? nHeads,
    vocabSize: embd.dims[1] ?? 1,
    seqLen: contextLength,
    ropeTheta: m.float("llama.rope.freq_base") ?? 10000,
    normEps: m.float("llama.attention.layer_norm_rms_epsilon") ?? 1e-5,
  };
  checkConfig(config, source);
  const headDim = dim / nHeads;
  for (
    const key of ["llama.attention.key_length", "llama.attention.value_length"]
  ) {
    const v = m.int(key, false);
    if (v !== undefined && v !== headDim) {
      throw m.fail(
        `${key} is ${v} but embedding_length / head_count is ${headDim}; seer needs them equal`,
      );
    }
  }
  const ropeDims = m.int("llama.rope.dimension_count", false);
  if (ropeDims !== undefined && ropeDims !== headDim) {
    throw m.fail(
      `llama.rope.dimension_count is ${ropeDims}, not the head size ${headDim}; partial RoPE is not supported`,
    );
  }
  const scaling = m.string("llama.rope.scaling.type");
  if (scaling !== undefined && scaling !== "none") {
    throw m.fail(`RoPE scaling "${scaling}" is not supported`);
  }
  const vocabCount = m.int("llama.vocab_size", false);
  if (vocabCount !== undefined && vocabCount !== config.vocabSize) {
    throw m.fail(
      `llama.vocab_size is ${vocabCount} but ${LLAMA_TENSOR_NAMES.tokenEmbedding} has ${config.vocabSize} rows`,
    );
  }

  const get = (name: string, rows: number, cols: number): Tensor => {
    const t = tensor(name);
    if (t.type === undefined || t.data === undefined) {
      throw m.fail(
        `tensor ${name} has type ${t.typeName} (${t.ggmlType}); seer reads F32, F16 and Q8_0. ` +
          `Requantize with llama-quantize to Q8_0 or F16.`,
      );
    }
    const [ne0, ne1 = 1, ...rest] = t.dims;
    if (rest.some((x) => x !== 1)) {
      throw m.fail(
        `tensor ${name} has shape ${t.dims.join("×")}; expected 2-D`,
      );
    }
    const out: Tensor = { type: t.type, rows: ne1, cols: ne0, data: t.data };
    checkTensor(out, rows, cols, name, source);
    return out;
  };
  const kvDim = config.nKvHeads * headDim;
  const layers: LayerTensors[] = [];
  for (let i = 0; i < config.nLayers; i++) {
    const n = LLAMA_TENSOR_NAMES.layer(i);
    layers.push({
      attnNorm: get(n.attnNorm, 1, dim),
      wq: get(n.wq, dim, dim),
      wk: get(n.wk, kvDim, dim),
      wv: get(n.wv, kvDim, dim),
      wo: get(n.wo, dim, dim),
      ffnNorm: get(n.ffnNorm, 1, dim),
      w1: get(n.w1, config.hiddenDim, dim),
      w2: get(n.w2, dim, config.hiddenDim),
      w3: get(n.w3, config.hiddenDim, dim),
    });
  }
  const tokenEmbedding = get(
    LLAMA_TENSOR_NAMES.tokenEmbedding,
    config.vocabSize,
    dim,
  );
  // No output.weight means the classifier is the embedding (as llama.cpp reads it).
  const classifier = file.tensors.has(LLAMA_TENSOR_NAMES.classifier)
    ? get(LLAMA_TENSOR_NAMES.classifier, config.vocabSize, dim)
    : tokenEmbedding;
  const vocabulary = ggufVocabulary(file, source);
  if (options.contextLength !== undefined) {
    config.seqLen = checkContextLength(options.contextLength, source);
  }
  return {
    source,
    format: "gguf",
    config,
    tensors: {
      tokenEmbedding,
      layers,
      finalNorm: get(LLAMA_TENSOR_NAMES.finalNorm, 1, dim),
      classifier,
    },
    vocabulary,
  };
}

// ---------------------------------------------------------------------------
// Writing

export interface GgufWriteEntry extends GgufEntry {
  key: string;
}

export interface GgufWriteTensor {
  name: string;
  type: TensorType;
  /** ne, innermost first: [cols, rows] for a matrix. */
  dims: number[];
  /** The bytes, or a function making them when written (one at a time). */
  data: Uint8Array | (() => Uint8Array);
}

export interface GgufSpec {
  metadata: GgufWriteEntry[];
  tensors: GgufWriteTensor[];
}

/** A growable little-endian byte buffer for the header. */
class Out {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  n = 0;
  room(k: number) {
    if (this.n + k <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(x: number) {
    this.room(1);
    this.view.setUint8(this.n++, x);
  }
  u32(x: number) {
    this.room(4);
    this.view.setUint32(this.n, x, true);
    this.n += 4;
  }
  u64(x: number | bigint) {
    this.room(8);
    this.view.setBigUint64(this.n, BigInt(x), true);
    this.n += 8;
  }
  bytes(b: Uint8Array) {
    this.room(b.length);
    this.buf.set(b, this.n);
    this.n += b.length;
  }
  string(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  value(type: GgufValueType, v: GgufValue, itemType?: GgufValueType) {
    const size = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2 } as const;
    switch (type) {
      case "u8":
      case "i8":
      case "bool":
      case "u16":
      case "i16": {
        this.room(size[type]);
        const x = type === "bool" ? (v ? 1 : 0) : Number(v);
        if (type === "u8") this.view.setUint8(this.n, x);
        if (type === "i8") this.view.setInt8(this.n, x);
        if (type === "bool") this.view.setUint8(this.n, x);
        if (type === "u16") this.view.setUint16(this.n, x, true);
        if (type === "i16") this.view.setInt16(this.n, x, true);
        this.n += size[type];
        return;
      }
      case "u32":
        return this.u32(Number(v));
      case "i32":
        this.room(4);
        this.view.setInt32(this.n, Number(v), true);
        this.n += 4;
        return;
      case "f32":
        this.room(4);
        this.view.setFloat32(this.n, Number(v), true);
        this.n += 4;
        return;
      case "f64":
        this.room(8);
        this.view.setFloat64(this.n, Number(v), true);
        this.n += 8;
        return;
      case "u64":
        return this.u64(BigInt(v as number | bigint));
      case "i64":
        this.room(8);
        this.view.setBigInt64(this.n, BigInt(v as number | bigint), true);
        this.n += 8;
        return;
      case "string":
        return this.string(v as string);
      case "array": {
        const items = v as GgufValue[];
        if (itemType === undefined || itemType === "array") {
          throw new SeerError(
            "invalid_argument",
            "GGUF writer: arrays need a scalar itemType",
          );
        }
        this.u32(GGUF_VALUE_TYPES.indexOf(itemType));
        this.u64(items.length);
        for (const x of items) this.value(itemType, x);
        return;
      }
    }
  }
}

function tensorBytes(t: GgufWriteTensor): number {
  const row = rowBytes(t.type, t.dims[0]);
  if (row < 0 || t.dims.length < 1 || t.dims.length > MAX_DIMS) {
    throw new SeerError(
      "invalid_argument",
      `GGUF writer: tensor ${t.name} (${t.type} ${
        t.dims.join("×")
      }) cannot be stored`,
    );
  }
  return row * (t.dims.reduce((p, x) => p * x, 1) / t.dims[0]);
}

/**
 * The file as chunks in order: the header (metadata, tensor infos, padding),
 * then each tensor's data and padding. Lazy tensor data is made only when
 * its chunk is reached, so a converter holds one converted tensor at a time.
 */
export function* ggufChunks(spec: GgufSpec): Generator<Uint8Array> {
  const align = GGUF_DEFAULT_ALIGNMENT;
  const h = new Out();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(spec.tensors.length);
  h.u64(spec.metadata.length);
  for (const e of spec.metadata) {
    if (e.key === "general.alignment" && e.value !== align) {
      throw new SeerError(
        "invalid_argument",
        `GGUF writer: alignment is always ${align}`,
      );
    }
    h.string(e.key);
    h.u32(GGUF_VALUE_TYPES.indexOf(e.type));
    h.value(e.type, e.value, e.itemType);
  }
  const pad = (n: number) => (align - (n % align)) % align;
  const sizes = spec.tensors.map(tensorBytes);
  let offset = 0;
  spec.tensors.forEach((t, i) => {
    h.string(t.name);
    h.u32(t.dims.length);
    for (const d of t.dims) h.u64(d);
    h.u32(TYPE_IDS[t.type]);
    h.u64(offset);
    offset += sizes[i] + pad(sizes[i]);
  });
  h.bytes(new Uint8Array(pad(h.n)));
  yield h.buf.slice(0, h.n);
  for (let i = 0; i < spec.tensors.length; i++) {
    const t = spec.tensors[i];
    const data = typeof t.data === "function" ? t.data() : t.data;
    if (data.byteLength !== sizes[i]) {
      throw new SeerError(
        "invalid_argument",
        `GGUF writer: tensor ${t.name} has ${data.byteLength} bytes, its shape needs ${
          sizes[i]
        }`,
      );
    }
    yield data;
    if (pad(sizes[i]) > 0) yield new Uint8Array(pad(sizes[i]));
  }
}

/** The whole file in memory. */
export function writeGguf(spec: GgufSpec): Uint8Array {
  const chunks = [...ggufChunks(spec)];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

export interface LlamaGgufOptions {
  /** general.name */
  name: string;
  /**
   * Target type of each tensor, given its role; norms and anything the
   * function leaves undefined stay as they are.
   */
  typeOf?: (name: string, t: Tensor) => TensorType | undefined;
  /** Converts a tensor to another type (called lazily, one tensor at a time). */
  convert?: (t: Tensor, to: TensorType) => Uint8Array;
  /** general.file_type (llama_ftype): 0 all F32, 1 mostly F16, 7 mostly Q8_0. */
  fileType?: number;
}

/**
 * A llama model and its vocabulary laid out as llama.cpp names them. A
 * shared classifier is written once, as token_embd.weight (llama.cpp reads a
 * missing output.weight as tied to it).
 */
export function llamaGgufSpec(
  model: Pick<ModelFile, "config" | "tensors">,
  vocab: Vocabulary,
  options: LlamaGgufOptions,
): GgufSpec {
  const c = model.config;
  const headDim = c.dim / c.nHeads;
  const u32 = (key: string, value: number): GgufWriteEntry => ({
    key,
    type: "u32",
    value,
  });
  const f32 = (key: string, value: number): GgufWriteEntry => ({
    key,
    type: "f32",
    value,
  });
  const tokens = vocab.spaceMarker === "▁"
    ? vocab.tokens
    : vocab.tokens.map((t) => t.replaceAll(" ", "▁"));
  const metadata: GgufWriteEntry[] = [
    { key: "general.architecture", type: "string", value: "llama" },
    { key: "general.name", type: "string", value: options.name },
    u32("general.file_type", options.fileType ?? 0),
    u32("llama.context_length", c.seqLen),
    u32("llama.embedding_length", c.dim),
    u32("llama.block_count", c.nLayers),
    u32("llama.feed_forward_length", c.hiddenDim),
    u32("llama.rope.dimension_count", headDim),
    u32("llama.attention.head_count", c.nHeads),
    u32("llama.attention.head_count_kv", c.nKvHeads),
    f32("llama.attention.layer_norm_rms_epsilon", c.normEps),
    f32("llama.rope.freq_base", c.ropeTheta),
    { key: "tokenizer.ggml.model", type: "string", value: "llama" },
    {
      key: "tokenizer.ggml.tokens",
      type: "array",
      itemType: "string",
      value: tokens,
    },
    {
      key: "tokenizer.ggml.scores",
      type: "array",
      itemType: "f32",
      value: Array.from(vocab.scores),
    },
  ];
  if (vocab.types) {
    metadata.push({
      key: "tokenizer.ggml.token_type",
      type: "array",
      itemType: "i32",
      value: Array.from(vocab.types),
    });
  }
  metadata.push(
    u32("tokenizer.ggml.bos_token_id", vocab.bosId),
    u32("tokenizer.ggml.eos_token_id", vocab.eosId),
  );
  const unk = vocab.types?.indexOf(2) ?? -1; // type 2: unknown
  if (unk >= 0) metadata.push(u32("tokenizer.ggml.unknown_token_id", unk));
  if (vocab.addBos !== undefined) {
    metadata.push({
      key: "tokenizer.ggml.add_bos_token",
      type: "bool",
      value: vocab.addBos,
    });
  }
  if (vocab.addSpacePrefix !== undefined) {
    metadata.push({
      key: "tokenizer.ggml.add_space_prefix",
      type: "bool",
      value: vocab.addSpacePrefix,
    });
  }

  const tensors: GgufWriteTensor[] = [];
  const add = (name: string, t: Tensor) => {
    const to = t.rows === 1 ? t.type : (options.typeOf?.(name, t) ?? t.type);
    const convert = options.convert;
    if (to !== t.type && convert === undefined) {
      throw new SeerError(
        "invalid_argument",
        `GGUF writer: ${name} is ${t.type}, ${to} asked, no converter given`,
      );
    }
    tensors.push({
      name,
      type: to,
      dims: t.rows === 1 ? [t.cols] : [t.cols, t.rows],
      data: to === t.type ? t.data : () => convert!(t, to),
    });
  };
  const T = model.tensors;
  add(LLAMA_TENSOR_NAMES.tokenEmbedding, T.tokenEmbedding);
  T.layers.forEach((l, i) => {
    const n = LLAMA_TENSOR_NAMES.layer(i);
    for (const k of Object.keys(n) as (keyof LayerTensors)[]) add(n[k], l[k]);
  });
  add(LLAMA_TENSOR_NAMES.finalNorm, T.finalNorm);
  if (T.classifier !== T.tokenEmbedding) {
    add(LLAMA_TENSOR_NAMES.classifier, T.classifier);
  }
  return { metadata, tensors };
}
