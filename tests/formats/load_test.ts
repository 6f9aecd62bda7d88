import assert from "node:assert/strict";
import {
  checkVocabulary,
  detectFormat,
  loadModelFiles,
  parseModel,
  readModelFile,
  readTokenizerFile,
} from "../../src/formats/load.ts";
import { llamaGgufSpec, writeGguf } from "../../src/formats/gguf.ts";
import { toSentencepieceVocabulary } from "../../src/tokenizer/tokenizer_bin.ts";
import { SeerError } from "../../src/errors.ts";
import {
  afterGgufString,
  model,
  tinyModel,
  tinyVocabulary,
  view,
} from "./fixtures.ts";

const STORIES = model("stories260K.bin");
const TOK512 = model("tok512.bin");
const TOK32K = model("tokenizer.bin");
const GGUF = model("stories260K-f32.gguf");

/** Runs `f`, demanding SeerError(invalid_model) naming `file` and matching `pattern`. */
async function refused(
  f: () => unknown,
  file: string,
  pattern: RegExp,
  code = "invalid_model",
) {
  let error: unknown;
  try {
    await f();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof SeerError, `expected a SeerError, got ${error}`);
  assert.equal(error.code, code, error.message);
  assert.ok(
    error.message.includes(file),
    `"${error.message}" does not name ${file}`,
  );
  assert.match(error.message, pattern);
}

Deno.test("load: both formats are read from disk and told apart by magic", async () => {
  const a = await readModelFile(STORIES);
  const b = await readModelFile(GGUF, { contextLength: 512 });
  assert.equal(a.format, "llama2c");
  assert.equal(b.format, "gguf");
  assert.equal(a.source, STORIES);
  assert.deepEqual(b.config.seqLen, 512);
  assert.equal(detectFormat(await Deno.readFile(GGUF)), "gguf");
  assert.equal(detectFormat(new Uint8Array(2)), "llama2c");
});

Deno.test("load: model + tokenizer are checked against each other", async () => {
  const { model: m, vocabulary } = await loadModelFiles(STORIES, {
    tokenizer: TOK512,
  });
  assert.equal(vocabulary.tokens.length, m.config.vocabSize);
  const g = await loadModelFiles(GGUF);
  assert.equal(g.vocabulary.spaceMarker, "▁");
  // A tokenizer file overrides the GGUF's own vocabulary.
  const o = await loadModelFiles(GGUF, { tokenizer: TOK512 });
  assert.equal(o.vocabulary.spaceMarker, " ");
});

Deno.test("load: a tokenizer of the wrong size is refused, naming both files", async () => {
  await refused(
    () => loadModelFiles(STORIES, { tokenizer: TOK32K }),
    TOK32K,
    /the tokenizer has 32000 tokens but the model's vocab_size is 512/,
  );
  await refused(
    () => loadModelFiles(GGUF, { tokenizer: TOK32K }),
    GGUF,
    /32000 tokens/,
  );
  const m = await readModelFile(STORIES);
  const v = await readTokenizerFile(TOK512);
  await refused(
    () => checkVocabulary(m, { ...v, bosId: 512 }),
    STORIES,
    /BOS token id 512 is outside/,
  );
  await refused(
    () => checkVocabulary(m, { ...v, tokens: v.tokens.slice(0, 500) }, "t.bin"),
    "t.bin",
    /500 tokens/,
  );
});

Deno.test("load: a llama2.c model without a tokenizer asks for one", async () => {
  await refused(
    () => loadModelFiles(STORIES),
    STORIES,
    /pass a tokenizer.bin \(--tokenizer PATH\)/,
    "invalid_argument",
  );
});

Deno.test("load: missing files and wrong magic are named", async () => {
  await refused(
    () => readModelFile("/nonexistent/m.bin"),
    "/nonexistent/m.bin",
    /no such file/,
  );
  await refused(
    () => readTokenizerFile("/nonexistent/t.bin"),
    "/nonexistent/t.bin",
    /no such file/,
  );
  const bytes = await Deno.readFile(GGUF);
  const wrong = bytes.slice();
  wrong.set([0x47, 0x47, 0x55, 0x58]); // "GGUX"
  await refused(
    () => parseModel(wrong, "wrong.gguf"),
    "wrong.gguf",
    /does not start with "GGUF", so it was read as a legacy llama2.c checkpoint/,
  );
  const legacy = bytes.slice();
  legacy.set(new TextEncoder().encode("tjgg")); // llama.cpp's old GGJT magic
  await refused(() => parseModel(legacy, "old.bin"), "old.bin", /legacy GGJT/);
  await refused(
    () => parseModel(new Uint8Array(0), "empty.bin"),
    "empty.bin",
    /ends early/,
  );
  // A tokenizer passed as the model: a header of nonsense values.
  await refused(
    () => parseModel(Deno.readFileSync(TOK512), "tok-as-model.bin"),
    "tok-as-model.bin",
    /must be an integer|does not divide/,
  );
});

// --- GGUF refusals, each made by patching one field of a valid file ------

const tiny = () =>
  writeGguf(
    llamaGgufSpec(
      tinyModel(),
      toSentencepieceVocabulary(tinyVocabulary(300)),
      { name: "tiny" },
    ),
  );

function patched(edit: (b: Uint8Array, d: DataView) => void): Uint8Array {
  const b = tiny();
  edit(b, view(b));
  return b;
}

/** Byte offset of the tensor info fields after `name`: n_dims, ne…, type, offset. */
function tensorInfo(b: Uint8Array, name: string) {
  const at = afterGgufString(b, name);
  const nDims = view(b).getUint32(at, true);
  return { nDims: at, type: at + 4 + 8 * nDims, offset: at + 8 + 8 * nDims };
}

Deno.test("gguf refusals: version, truncation, types, bounds, absurd lengths", async () => {
  const src = "bad.gguf";
  const bad = (b: Uint8Array, pattern: RegExp) =>
    refused(() => parseModel(b, src), src, pattern);
  await bad(
    patched((_, d) => d.setUint32(4, 2, true)),
    /GGUF version 2 is not supported/,
  );
  await bad(patched((_, d) => d.setUint32(4, 4, true)), /GGUF version 4/);
  await bad(
    patched((b, d) =>
      d.setUint32(tensorInfo(b, "blk.0.attn_q.weight").type, 99, true)
    ),
    /tensor blk.0.attn_q.weight has unknown GGML type 99/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(tensorInfo(b, "blk.0.attn_q.weight").type, 12, true)
    ),
    /tensor blk.0.attn_q.weight has type Q4_K \(12\); seer reads F32, F16 and Q8_0/,
  );
  await bad(
    patched((b, d) =>
      d.setBigUint64(
        tensorInfo(b, "blk.1.ffn_up.weight").offset,
        BigInt(b.length & ~31), // aligned, inside the file, but the data would run past its end
        true,
      )
    ),
    /tensor blk.1.ffn_up.weight .* ends past the end of the file/,
  );
  await bad(
    patched((b, d) =>
      d.setBigUint64(tensorInfo(b, "output_norm.weight").offset, 8n, true)
    ),
    /not a multiple of the alignment 32/,
  );
  await bad(
    patched((b, d) =>
      d.setBigUint64(tensorInfo(b, "token_embd.weight").nDims + 4, 0n, true)
    ),
    /dimension of size 0/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(tensorInfo(b, "token_embd.weight").nDims, 9, true)
    ),
    /9 dimensions; GGUF allows 1 to 4/,
  );
  // Array item count and string lengths far beyond the file.
  await bad(
    patched((b, d) =>
      d.setBigUint64(
        afterGgufString(b, "tokenizer.ggml.tokens") + 8,
        1n << 62n,
        true,
      )
    ),
    /item count of metadata tokenizer.ggml.tokens is 4611686018427387904, more than/,
  );
  await bad(
    patched((b, d) =>
      d.setBigUint64(afterGgufString(b, "general.name") + 4, 1n << 40n, true)
    ),
    /length of metadata general.name is 1099511627776, more than/,
  );
  await bad(
    patched((b, d) =>
      d.setBigUint64(
        afterGgufString(b, "general.name") - 20, // the key's own length
        2n ** 64n - 1n,
        true,
      )
    ),
    /length of metadata key #1 is 18446744073709551615/,
  );
  await bad(
    patched((_, d) => d.setBigUint64(8, 1n << 50n, true)),
    /tensor count is 1125899906842624/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(afterGgufString(b, "general.name"), 13, true)
    ),
    /metadata general.name has value type 13 .* GGUF defines 0..12/,
  );
  // Hyperparameters the model cannot have.
  await bad(
    patched((b, d) =>
      d.setUint32(afterGgufString(b, "llama.attention.head_count") + 4, 5, true)
    ),
    /n_heads \(5\) does not divide dim \(64\)/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(
        afterGgufString(b, "llama.attention.head_count_kv") + 4,
        3,
        true,
      )
    ),
    /n_kv_heads \(3\) does not divide n_heads \(4\)/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(afterGgufString(b, "llama.embedding_length") + 4, 0, true)
    ),
    /dim is 0/,
  );
  await bad(
    patched((b, d) =>
      d.setUint32(afterGgufString(b, "llama.feed_forward_length") + 4, 97, true)
    ),
    /blk.0.ffn_gate.weight is 96×64, but the model's hyperparameters need 97×64/,
  );
  await bad(
    patched((b) =>
      b.set(
        new TextEncoder().encode("gemma"),
        afterGgufString(b, "general.architecture") + 12,
      )
    ),
    /the architecture is "gemma"/,
  );
  await bad(
    patched((b) =>
      b.set(
        new TextEncoder().encode("blk.0.ffn_up.weighX"),
        afterGgufString(b, "blk.0.ffn_up.weight") - 19,
      )
    ),
    /tensor blk.0.ffn_up.weight is missing/,
  );
});

Deno.test("gguf refusals: truncation at many cut points", async () => {
  const b = tiny();
  const cuts = [0, 3, 4, 7, 8, 16, 23, 24];
  for (let c = 25; c < b.length; c += Math.max(1, Math.floor(c / 9))) {
    cuts.push(c);
  }
  cuts.push(b.length - 1);
  for (const cut of cuts) {
    await refused(
      () => parseModel(b.subarray(0, cut), "cut.gguf"),
      "cut.gguf",
      /ends early|truncated|ends past the end/,
    );
  }
});
