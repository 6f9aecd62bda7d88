/**
 * Checks every reader shares: a Llama config that the forward pass can run
 * (positive sizes, heads that divide evenly, nothing absurd), tensors of the
 * shapes that config implies, and a vocabulary that fits the model.
 * Pure functions over the contract in types.ts; no I/O.
 */
import type {
  LlamaConfig,
  ModelFile,
  Tensor,
  TensorType,
  Vocabulary,
} from "./types.ts";
import { invalidModel } from "./bytes.ts";
import { SeerError } from "../errors.ts";

/**
 * Upper bounds well above any released Llama-family model (the largest have
 * dim 16384, hidden 53248, 126 layers, vocab 256000, context 131072) yet low
 * enough that sizes computed from them stay exact in a double.
 */
export const LIMITS = {
  dim: 1 << 16,
  hiddenDim: 1 << 18,
  nLayers: 1024,
  vocabSize: 1 << 22,
  seqLen: 1 << 24,
} as const;

/** Throws invalid_model unless `c` describes a model the runtime can run. */
export function checkConfig(c: LlamaConfig, source: string): void {
  const bad = (problem: string) => invalidModel(source, problem);
  const field = (name: string, value: number, max: number) => {
    if (!Number.isInteger(value) || value < 1 || value > max) {
      throw bad(
        `${name} is ${value}; it must be an integer from 1 to ${max}. ` +
          `The header is corrupt or this is not a Llama model file.`,
      );
    }
  };
  field("dim", c.dim, LIMITS.dim);
  field("hidden_dim", c.hiddenDim, LIMITS.hiddenDim);
  field("n_layers", c.nLayers, LIMITS.nLayers);
  field("n_heads", c.nHeads, c.dim);
  field("n_kv_heads", c.nKvHeads, c.nHeads);
  field("vocab_size", c.vocabSize, LIMITS.vocabSize);
  field("seq_len", c.seqLen, LIMITS.seqLen);
  if (c.dim % c.nHeads !== 0) {
    throw bad(
      `n_heads (${c.nHeads}) does not divide dim (${c.dim}); every head must have the same width`,
    );
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw bad(
      `n_kv_heads (${c.nKvHeads}) does not divide n_heads (${c.nHeads}); grouped-query attention needs equal groups`,
    );
  }
  if ((c.dim / c.nHeads) % 2 !== 0) {
    throw bad(
      `head size dim / n_heads = ${
        c.dim / c.nHeads
      } is odd; RoPE rotates pairs of values, so it must be even`,
    );
  }
  if (!(c.ropeTheta > 0) || !Number.isFinite(c.ropeTheta)) {
    throw bad(`rope theta is ${c.ropeTheta}; it must be a positive number`);
  }
  if (!(c.normEps > 0) || !(c.normEps < 1)) {
    throw bad(`RMSNorm epsilon is ${c.normEps}; it must be in (0, 1)`);
  }
}

/** Bytes one row of `cols` values takes in `type`, or -1 when impossible. */
export function rowBytes(type: TensorType, cols: number): number {
  switch (type) {
    case "f32":
      return cols * 4;
    case "f16":
      return cols * 2;
    case "q8_0":
      return cols % 32 === 0 ? (cols / 32) * 34 : -1;
  }
}

/** Throws unless `t` has the expected shape and exactly the bytes it needs. */
export function checkTensor(
  t: Tensor,
  rows: number,
  cols: number,
  name: string,
  source: string,
): void {
  if (t.rows !== rows || t.cols !== cols) {
    throw invalidModel(
      source,
      `tensor ${name} is ${t.rows}×${t.cols}, but the model's hyperparameters need ${rows}×${cols}`,
    );
  }
  const row = rowBytes(t.type, cols);
  if (row < 0) {
    throw invalidModel(
      source,
      `tensor ${name} is ${t.type} with rows of ${cols} values; q8_0 rows must be a multiple of 32`,
    );
  }
  if (t.data.byteLength !== row * rows) {
    throw invalidModel(
      source,
      `tensor ${name} has ${t.data.byteLength} bytes, but ${rows}×${cols} ${t.type} needs ${
        row * rows
      }`,
    );
  }
}

/** Checks every tensor of a model against its config. */
export function checkTensors(model: ModelFile): void {
  const c = model.config;
  const headDim = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * headDim;
  const t = model.tensors;
  const src = model.source;
  checkTensor(t.tokenEmbedding, c.vocabSize, c.dim, "token embedding", src);
  if (t.layers.length !== c.nLayers) {
    throw invalidModel(
      src,
      `the file holds ${t.layers.length} layers, but n_layers is ${c.nLayers}`,
    );
  }
  t.layers.forEach((l, i) => {
    checkTensor(l.attnNorm, 1, c.dim, `layer ${i} attention norm`, src);
    checkTensor(l.wq, c.dim, c.dim, `layer ${i} wq`, src);
    checkTensor(l.wk, kvDim, c.dim, `layer ${i} wk`, src);
    checkTensor(l.wv, kvDim, c.dim, `layer ${i} wv`, src);
    checkTensor(l.wo, c.dim, c.dim, `layer ${i} wo`, src);
    checkTensor(l.ffnNorm, 1, c.dim, `layer ${i} ffn norm`, src);
    checkTensor(l.w1, c.hiddenDim, c.dim, `layer ${i} w1 (gate)`, src);
    checkTensor(l.w2, c.dim, c.hiddenDim, `layer ${i} w2 (down)`, src);
    checkTensor(l.w3, c.hiddenDim, c.dim, `layer ${i} w3 (up)`, src);
  });
  checkTensor(t.finalNorm, 1, c.dim, "final norm", src);
  checkTensor(t.classifier, c.vocabSize, c.dim, "classifier", src);
}

/**
 * Throws unless `vocab` can drive `model`: the same number of tokens as the
 * model has embeddings, and BOS/EOS ids inside it. `vocabSource` names the
 * tokenizer file when it is not the model file.
 */
export function checkVocabulary(
  model: ModelFile,
  vocab: Vocabulary,
  vocabSource = model.source,
): void {
  const n = vocab.tokens.length;
  const both = vocabSource === model.source
    ? model.source
    : `${model.source} with tokenizer ${vocabSource}`;
  if (n !== model.config.vocabSize) {
    throw new SeerError(
      "invalid_model",
      `${both}: the tokenizer has ${n} tokens but the model's vocab_size is ${model.config.vocabSize}; ` +
        `use the tokenizer the model was trained with (the 32000-token tokenizer.bin for Llama 2 models, tok512.bin for stories260K)`,
    );
  }
  if (vocab.scores.length !== n) {
    throw new SeerError(
      "invalid_model",
      `${vocabSource}: ${vocab.scores.length} scores for ${n} tokens`,
    );
  }
  const ids = [["BOS", vocab.bosId], ["EOS", vocab.eosId]] as const;
  for (const [name, id] of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= n) {
      throw new SeerError(
        "invalid_model",
        `${vocabSource}: the ${name} token id ${id} is outside the vocabulary of ${n} tokens`,
      );
    }
  }
}
