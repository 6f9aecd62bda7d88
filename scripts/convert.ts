/**
 * Writes a GGUF v3 file from a model seer can read (a llama2.c checkpoint
 * with its tokenizer.bin, or another GGUF), in llama.cpp's conventions:
 * general.architecture = llama, llama.* hyperparameters, the vocabulary in
 * tokenizer.ggml.* ("▁" for spaces, <unk>/<s>/</s>, token types), and
 * token_embd / blk.N.* / output_norm / output tensors.
 *
 *   deno task convert --in model.bin --tokenizer tok.bin --out model.gguf [--type f32|q8_0]
 *
 * With --type q8_0, every f32 matrix whose rows are a multiple of 32 values
 * is quantized by the quantize_q8_0 kernel; the others (norms, and e.g.
 * stories260K's ffn_down with rows of 172) stay f32, as llama.cpp falls back.
 * A shared classifier is written once, as token_embd.weight. The output is
 * streamed: one converted tensor at a time.
 */
import { basename, extname } from "node:path";
import { ggufChunks, llamaGgufSpec } from "../src/formats/gguf.ts";
import { loadModelFiles } from "../src/formats/load.ts";
import type { Tensor, TensorType } from "../src/formats/types.ts";
import { toSentencepieceVocabulary } from "../src/tokenizer/tokenizer_bin.ts";
import { Runtime } from "../src/kernels/runtime.ts";
import { SeerError } from "../src/errors.ts";
import { parse, string } from "../src/cli/args.ts";

export type OutputType = "f32" | "q8_0";

export interface ConvertOptions {
  input: string;
  /** tokenizer.bin; needed for llama2.c input, optional for GGUF. */
  tokenizer?: string;
  out: string;
  type?: OutputType;
}

export interface ConvertReport {
  bytes: number;
  /** How many tensors of each type were written. */
  types: Record<string, number>;
}

/** llama_ftype values for general.file_type. */
const FILE_TYPE: Record<OutputType, number> = { f32: 0, q8_0: 7 };

/** q8_0 blocks of a row-major f32 tensor, by the WASM kernel. */
export function quantizeQ8_0(rt: Runtime, t: Tensor): Uint8Array {
  const n = t.rows * t.cols;
  if (t.type !== "f32" || t.cols % 32 !== 0) {
    throw new SeerError(
      "internal",
      `quantizeQ8_0: needs an f32 tensor with rows a multiple of 32, got ${t.type} ${t.rows}×${t.cols}`,
    );
  }
  const x = rt.array(Float32Array, n);
  const q = rt.array(Uint8Array, (n / 32) * 34);
  try {
    // A Float32Array over the tensor's bytes needs 4-byte alignment; GGUF
    // and llama2.c data always have it, but copy rather than assume.
    const src = t.data.byteOffset % 4 === 0
      ? new Float32Array(t.data.buffer, t.data.byteOffset, n)
      : new Float32Array(t.data.slice().buffer);
    x.view.set(src);
    rt.k.quantize_q8_0(q.ptr, x.ptr, n);
    return q.view.slice();
  } finally {
    x.free();
    q.free();
  }
}

export async function convert(o: ConvertOptions): Promise<ConvertReport> {
  const type = o.type ?? "f32";
  if (type !== "f32" && type !== "q8_0") {
    throw new SeerError(
      "invalid_argument",
      `--type must be f32 or q8_0, not "${type}"`,
    );
  }
  const { model, vocabulary } = await loadModelFiles(o.input, {
    tokenizer: o.tokenizer,
  });
  const rt = type === "q8_0" ? await Runtime.load() : undefined;
  const spec = llamaGgufSpec(model, toSentencepieceVocabulary(vocabulary), {
    name: basename(o.input, extname(o.input)),
    fileType: FILE_TYPE[type],
    typeOf: (_name, t): TensorType | undefined =>
      type === "q8_0" && t.type === "f32" && t.cols % 32 === 0
        ? "q8_0"
        : undefined,
    convert: (t) => quantizeQ8_0(rt!, t),
  });
  const types: Record<string, number> = {};
  for (const t of spec.tensors) types[t.type] = (types[t.type] ?? 0) + 1;

  const file = await Deno.open(o.out, {
    write: true,
    create: true,
    truncate: true,
  });
  let bytes = 0;
  try {
    for (const chunk of ggufChunks(spec)) {
      for (let at = 0; at < chunk.length;) {
        at += await file.write(chunk.subarray(at));
      }
      bytes += chunk.length;
    }
  } finally {
    file.close();
  }
  return { bytes, types };
}

const USAGE =
  `usage: deno task convert --in MODEL --tokenizer TOKENIZER.bin --out FILE.gguf [--type f32|q8_0]

Writes a GGUF v3 file (llama architecture, llama.cpp's names and keys) from a
llama2.c checkpoint and its tokenizer.bin, or from a GGUF file (its own
vocabulary is used when --tokenizer is absent). --type q8_0 quantizes every
f32 matrix whose rows are a multiple of 32; the rest stays f32.`;

/** The command line; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  try {
    const v = parse(args, {
      in: { type: "string" },
      tokenizer: { type: "string" },
      out: { type: "string" },
      type: { type: "string" },
    }, USAGE);
    const input = string(v, "in"), out = string(v, "out");
    if (!input || !out) {
      throw new SeerError(
        "invalid_argument",
        `--in and --out are required\n\n${USAGE}`,
      );
    }
    const t0 = performance.now();
    const r = await convert({
      input,
      out,
      tokenizer: string(v, "tokenizer"),
      type: (string(v, "type") ?? "f32") as OutputType,
    });
    const kinds = Object.entries(r.types).map(([t, n]) => `${n} ${t}`);
    console.error(
      `convert: wrote ${out} (${(r.bytes / 2 ** 20).toFixed(1)} MiB; ${
        kinds.join(", ")
      } tensors) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof SeerError)) throw e;
    console.error(`convert: ${e.message}`);
    return e.code === "invalid_argument" ? 2 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
