/**
 * Model-file fixtures for the format tests: paths of the shared real files,
 * tiny random models built in memory, and byte-level helpers to find and
 * patch fields in a file.
 */
import type {
  LayerTensors,
  LlamaConfig,
  ModelFile,
  Tensor,
  Vocabulary,
} from "../../src/formats/types.ts";
import { randomF32, testRng } from "../helpers.ts";

export const MODELS = new URL("../../../shared/models/", import.meta.url);
export const model = (name: string) => new URL(name, MODELS).pathname;
export const GOLDEN = new URL(
  "../../../shared/golden/stories260K-greedy.json",
  import.meta.url,
).pathname;

export interface GoldenCase {
  prompt: string;
  steps: number;
  text: string;
  tokens: number[];
  n_prompt_tokens: number;
}

export function golden(): GoldenCase[] {
  return JSON.parse(Deno.readTextFileSync(GOLDEN));
}

export function f32Tensor(rows: number, cols: number, seed: number): Tensor {
  const v = randomF32(rows * cols, seed);
  return { type: "f32", rows, cols, data: new Uint8Array(v.buffer) };
}

/** A random f32 llama model (weights uniform in [-1, 1)). */
export function tinyModel(
  config: Partial<LlamaConfig> = {},
  shared = true,
  seed = 1,
): Pick<ModelFile, "config" | "tensors"> {
  const c: LlamaConfig = {
    dim: 64,
    hiddenDim: 96,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 300,
    seqLen: 32,
    ropeTheta: 10000,
    normEps: 1e-5,
    ...config,
  };
  let s = seed * 1000;
  const t = (rows: number, cols: number) => f32Tensor(rows, cols, s++);
  const kv = (c.dim / c.nHeads) * c.nKvHeads;
  const layers: LayerTensors[] = [];
  for (let i = 0; i < c.nLayers; i++) {
    layers.push({
      attnNorm: t(1, c.dim),
      wq: t(c.dim, c.dim),
      wk: t(kv, c.dim),
      wv: t(kv, c.dim),
      wo: t(c.dim, c.dim),
      ffnNorm: t(1, c.dim),
      w1: t(c.hiddenDim, c.dim),
      w2: t(c.dim, c.hiddenDim),
      w3: t(c.hiddenDim, c.dim),
    });
  }
  const tokenEmbedding = t(c.vocabSize, c.dim);
  return {
    config: c,
    tensors: {
      tokenEmbedding,
      layers,
      finalNorm: t(1, c.dim),
      classifier: shared ? tokenEmbedding : t(c.vocabSize, c.dim),
    },
  };
}

/** A llama2.c-style vocabulary of `n` tokens: specials, 256 bytes, then pieces. */
export function tinyVocabulary(n: number, seed = 7): Vocabulary {
  const rand = testRng(seed);
  const tokens = ["<unk>", "\n<s>\n", "\n</s>\n"];
  for (let b = 0; b < 256 && tokens.length < n; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  }
  const letters = " abcdefghij";
  while (tokens.length < n) {
    let p = "";
    const len = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < len; i++) p += letters[Math.floor(rand() * 11)];
    if (!tokens.includes(p)) tokens.push(p);
  }
  const scores = new Float32Array(n);
  for (let i = 259; i < n; i++) scores[i] = -(i - 259);
  return { tokens, scores, bosId: 1, eosId: 2, spaceMarker: " " };
}

/** The bytes of a vocabulary as a llama2.c tokenizer.bin. */
export function tokenizerBin(v: Vocabulary): Uint8Array {
  const enc = new TextEncoder();
  const pieces = v.tokens.map((t) => enc.encode(t));
  const maxLen = Math.max(1, ...pieces.map((p) => p.length));
  const out = new Uint8Array(4 + pieces.reduce((n, p) => n + 8 + p.length, 0));
  const d = new DataView(out.buffer);
  d.setInt32(0, maxLen, true);
  let at = 4;
  pieces.forEach((p, i) => {
    d.setFloat32(at, v.scores[i], true);
    d.setInt32(at + 4, p.length, true);
    out.set(p, at + 8);
    at += 8 + p.length;
  });
  return out;
}

/** Offset of the first occurrence of `needle` at or after `from`, or -1. */
export function findBytes(
  hay: Uint8Array,
  needle: Uint8Array | string,
  from = 0,
): number {
  const n = typeof needle === "string"
    ? new TextEncoder().encode(needle)
    : needle;
  outer: for (let i = from; i + n.length <= hay.length; i++) {
    for (let j = 0; j < n.length; j++) if (hay[i + j] !== n[j]) continue outer;
    return i;
  }
  return -1;
}

/** Where a GGUF string with this text ends (the u64 length precedes it). */
export function afterGgufString(bytes: Uint8Array, text: string): number {
  const at = findBytes(bytes, text);
  if (at < 8) throw new Error(`"${text}" not found`);
  return at + new TextEncoder().encode(text).length;
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** f16 bits to a number (exact). */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function f32s(t: Tensor): Float32Array {
  return new Float32Array(
    t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.length),
  );
}

/** Dequantizes any supported tensor to floats (independent of the kernels). */
export function toFloats(t: Tensor): Float32Array {
  const n = t.rows * t.cols;
  const d = view(t.data);
  const out = new Float32Array(n);
  if (t.type === "f32") return f32s(t);
  if (t.type === "f16") {
    for (let i = 0; i < n; i++) out[i] = f16ToNumber(d.getUint16(2 * i, true));
    return out;
  }
  for (let b = 0; b < n / 32; b++) {
    const scale = f16ToNumber(d.getUint16(34 * b, true));
    for (let i = 0; i < 32; i++) {
      out[32 * b + i] = scale * d.getInt8(34 * b + 2 + i);
    }
  }
  return out;
}

/** Every tensor of a model with a name, in a fixed order. */
export function namedTensors(
  m: Pick<ModelFile, "tensors">,
): [string, Tensor][] {
  const out: [string, Tensor][] = [[
    "tokenEmbedding",
    m.tensors.tokenEmbedding,
  ]];
  m.tensors.layers.forEach((l, i) => {
    for (const k of Object.keys(l) as (keyof LayerTensors)[]) {
      out.push([`layer${i}.${k}`, l[k]]);
    }
  });
  out.push(["finalNorm", m.tensors.finalNorm]);
  out.push(["classifier", m.tensors.classifier]);
  return out;
}

/**
 * Asserts two byte (or float) arrays are identical, reporting the first
 * difference; assert.deepEqual's diff of large arrays takes minutes.
 */
export function assertSame(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what = "",
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} ≠ ${expected.length}`);
  }
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new Error(
        `${what}: [${i}] is ${actual[i]}, expected ${expected[i]}`,
      );
    }
  }
}
