/**
 * Reading model and tokenizer files from disk: the format is told by its
 * magic, and every failure (a missing file, a corrupt header, a tokenizer
 * that does not fit the model) becomes SeerError("invalid_model") naming
 * the file and the problem. The parsers themselves are pure functions over
 * bytes (llama2c.ts, gguf.ts, ../tokenizer/tokenizer_bin.ts).
 */
import type { ModelFile, Vocabulary } from "./types.ts";
import { readLlama2c, type ReadOptions } from "./llama2c.ts";
import { GGUF_MAGIC, readGguf } from "./gguf.ts";
import { readTokenizerBin } from "../tokenizer/tokenizer_bin.ts";
import { checkVocabulary } from "./validate.ts";
import { SeerError } from "../errors.ts";

export { checkVocabulary };
export type { ReadOptions };

export type ModelFormat = "llama2c" | "gguf";

/** Formats recognised only to say what they are. */
const OTHER_MAGICS: Record<string, string> = {
  "ggml": "a legacy GGML file (pre-GGUF llama.cpp)",
  "ggmf": "a legacy GGMF file (pre-GGUF llama.cpp)",
  "ggjt": "a legacy GGJT file (pre-GGUF llama.cpp)",
  "PK\x03\x04": "a zip archive (a PyTorch .pt/.pth checkpoint?)",
  "\x89HDF": "an HDF5 file (Keras?)",
};

/**
 * What the first bytes say: GGUF by its magic; anything else is taken for
 * a legacy llama2.c checkpoint (which has no magic) and must then pass
 * that reader's header and size checks.
 */
export function detectFormat(bytes: Uint8Array): ModelFormat {
  if (
    bytes.byteLength >= 4 &&
    new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) ===
      GGUF_MAGIC
  ) return "gguf";
  return "llama2c";
}

/** Parses model bytes of either format. */
export function parseModel(
  bytes: Uint8Array,
  source: string,
  options: ReadOptions = {},
): ModelFile {
  if (detectFormat(bytes) === "gguf") return readGguf(bytes, source, options);
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 4));
  const other = OTHER_MAGICS[head] ??
    OTHER_MAGICS[[...head].reverse().join("")];
  if (other) {
    throw new SeerError(
      "invalid_model",
      `${source}: this is ${other}; seer reads GGUF v3 and llama2.c checkpoints`,
    );
  }
  try {
    return readLlama2c(bytes, source, options);
  } catch (e) {
    if (!(e instanceof SeerError)) throw e;
    // Without a magic, a header that makes no sense may just be another format.
    throw new SeerError(
      e.code,
      `${e.message} (the file does not start with "GGUF", so it was read as a legacy llama2.c checkpoint)`,
    );
  }
}

/**
 * The whole file in one buffer of its size. (Deno.readFile peaks at twice
 * the file size while it copies: 880 MB of RSS for a 440 MB model.)
 */
async function readBytes(path: string, what: string): Promise<Uint8Array> {
  try {
    using file = await Deno.open(path);
    const size = (await file.stat()).size;
    const bytes = new Uint8Array(size);
    let at = 0;
    while (at < size) {
      const n = await file.read(bytes.subarray(at));
      if (n === null) break; // shrank while we read: keep what is there
      at += n;
    }
    return at === size ? bytes : bytes.subarray(0, at);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Error
      ? e.message
      : String(e);
    throw new SeerError(
      "invalid_model",
      `${path}: cannot read the ${what}: ${why}`,
    );
  }
}

/** Wraps anything a parser throws that is not already a SeerError. */
function wrap<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SeerError) throw e;
    throw new SeerError(
      "invalid_model",
      `${path}: cannot be read: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/** Reads a model file (GGUF v3 or llama2.c). */
export async function readModelFile(
  path: string,
  options: ReadOptions = {},
): Promise<ModelFile> {
  const bytes = await readBytes(path, "model");
  return wrap(path, () => parseModel(bytes, path, options));
}

/** Reads a llama2.c tokenizer.bin. */
export async function readTokenizerFile(path: string): Promise<Vocabulary> {
  const bytes = await readBytes(path, "tokenizer");
  return wrap(path, () => readTokenizerBin(bytes, path));
}

export interface LoadFilesOptions extends ReadOptions {
  /** A tokenizer.bin; needed for llama2.c models, overrides a GGUF's own. */
  tokenizer?: string;
}

/**
 * A model and the vocabulary to use with it, checked against each other:
 * the tokenizer file when given, else the one the GGUF file carries.
 */
export async function loadModelFiles(
  path: string,
  options: LoadFilesOptions = {},
): Promise<{ model: ModelFile; vocabulary: Vocabulary }> {
  const model = await readModelFile(path, options);
  let vocabulary = model.vocabulary;
  let vocabSource = path;
  if (options.tokenizer !== undefined) {
    vocabulary = await readTokenizerFile(options.tokenizer);
    vocabSource = options.tokenizer;
  }
  if (vocabulary === undefined) {
    throw new SeerError(
      "invalid_argument",
      `${path}: this ${
        model.format === "gguf"
          ? "GGUF file has no tokenizer"
          : "llama2.c checkpoint has no vocabulary"
      }; pass a tokenizer.bin (--tokenizer PATH)`,
    );
  }
  checkVocabulary(model, vocabulary, vocabSource);
  return { model, vocabulary };
}
