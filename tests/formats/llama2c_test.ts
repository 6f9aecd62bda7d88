import { SeerError } from "../../src/errors.ts";
import assert from "node:assert/strict";
import {
  llama2cFileBytes,
  readLlama2c,
  ropeTable,
  writeLlama2c,
} from "../../src/formats/llama2c.ts";
import { checkTensors } from "../../src/formats/validate.ts";
import {
  assertSame,
  f32s,
  model,
  namedTensors,
  tinyModel,
} from "./fixtures.ts";

const STORIES = model("stories260K.bin");

Deno.test("llama2c: stories260K header matches its provenance", async () => {
  const m = readLlama2c(await Deno.readFile(STORIES), STORIES);
  assert.deepEqual(m.config, {
    dim: 64,
    hiddenDim: 172,
    nLayers: 5,
    nHeads: 8,
    nKvHeads: 4,
    vocabSize: 512,
    seqLen: 512,
    ropeTheta: 10000,
    normEps: 1e-5,
  });
  assert.equal(m.format, "llama2c");
  // A positive vocab_size in the header means the classifier is shared.
  assert.equal(m.tensors.classifier, m.tensors.tokenEmbedding);
  assert.equal(m.tensors.layers.length, 5);
  checkTensors(m);
  assert.equal(m.tensors.layers[0].wk.rows, 32); // 4 kv heads × head size 8
});

Deno.test("llama2c: stories260K's norms look like trained RMSNorm gains", async () => {
  // A misplaced section would put matrix weights (mean ≈ 0) where the norm
  // gains are; trained gains are positive and of order 1.
  const m = readLlama2c(await Deno.readFile(STORIES), STORIES);
  for (
    const t of [
      m.tensors.finalNorm,
      ...m.tensors.layers.map((l) => l.ffnNorm),
    ]
  ) {
    const v = f32s(t);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    assert.ok(mean > 0.2 && mean < 5, `norm mean ${mean}`);
  }
});

Deno.test("llama2c: the writer reproduces stories260K byte for byte outside the RoPE tables", async () => {
  const bytes = await Deno.readFile(STORIES);
  const m = readLlama2c(bytes, STORIES);
  const out = writeLlama2c(m);
  assert.equal(out.length, bytes.length);
  const c = m.config;
  const ropeBytes = 2 * 4 * c.seqLen * (c.dim / c.nHeads / 2);
  const ropeStart = bytes.length - ropeBytes; // shared classifier: tables come last
  assertSame(
    out.subarray(0, ropeStart),
    bytes.subarray(0, ropeStart),
    "checkpoint",
  );
  // The tables were computed in float32 by PyTorch (angle = pos · freq
  // rounded to f32), ours in double: angles up to 511 rad have an f32
  // spacing of 2^-15, so cos/sin may differ by about 2^-16 ≈ 1.5e-5, twice
  // that with freq's own rounding.
  const ours = new Float32Array(out.slice(ropeStart).buffer);
  const theirs = new Float32Array(bytes.slice(ropeStart).buffer);
  let worst = 0;
  for (let i = 0; i < ours.length; i++) {
    worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
  }
  assert.ok(worst < 4e-5, `RoPE tables differ by ${worst}`);
});

Deno.test("llama2c: a separate classifier round-trips (negative vocab_size)", () => {
  const m = tinyModel({}, false);
  const bytes = writeLlama2c(m);
  assert.equal(new DataView(bytes.buffer).getInt32(20, true), -300);
  assert.equal(bytes.length, llama2cFileBytes(m.config, false));
  const back = readLlama2c(bytes, "tiny.bin");
  assert.notEqual(back.tensors.classifier, back.tensors.tokenEmbedding);
  for (
    const [[name, a], [, b]] of namedTensors(m).map((
      x,
      i,
    ) => [x, namedTensors(back)[i]])
  ) {
    assertSame(b.data, a.data, name);
    assert.equal(b.rows, a.rows, name);
    assert.equal(b.cols, a.cols, name);
  }
});

Deno.test("llama2c: a shared-classifier file without the RoPE tables is accepted", () => {
  const m = tinyModel();
  const bytes = writeLlama2c(m);
  const c = m.config;
  const cut = bytes.subarray(
    0,
    bytes.length - 2 * 4 * c.seqLen * (c.dim / c.nHeads / 2),
  );
  const back = readLlama2c(cut, "cut.bin");
  assertSame(back.tensors.finalNorm.data, m.tensors.finalNorm.data);
});

Deno.test("llama2c: the RoPE table holds cos/sin of pos·theta^(-2i/head)", () => {
  const c = tinyModel().config; // head 16 → 8 frequencies
  const re = ropeTable(c, "real");
  const im = ropeTable(c, "imag");
  const pos = 5, i = 3;
  const angle = pos * 10000 ** (-(2 * i) / 16);
  assert.equal(re[pos * 8 + i], Math.fround(Math.cos(angle)));
  assert.equal(im[pos * 8 + i], Math.fround(Math.sin(angle)));
});

Deno.test("llama2c: a context-length override replaces seq_len only", async () => {
  const m = readLlama2c(await Deno.readFile(STORIES), STORIES, {
    contextLength: 1024,
  });
  assert.equal(m.config.seqLen, 1024);
  assert.equal(m.config.dim, 64);
});

// --- refusals -------------------------------------------------------------

function refused(bytes: Uint8Array, pattern: RegExp, source = "bad.bin") {
  assert.throws(
    () => readLlama2c(bytes, source),
    (e: unknown) => {
      assert.ok(e instanceof SeerError, `not a SeerError: ${e}`);
      assert.equal(e.code, "invalid_model");
      assert.ok(e.message.startsWith(`${source}: `), e.message);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

/** stories260K's header with field `i` (0..6) replaced. */
function withField(bytes: Uint8Array, i: number, v: number): Uint8Array {
  const out = bytes.slice();
  new DataView(out.buffer).setInt32(4 * i, v, true);
  return out;
}

Deno.test("llama2c: impossible headers are refused with the field named", async () => {
  const b = await Deno.readFile(STORIES);
  refused(withField(b, 0, 0), /dim is 0; it must be an integer from 1/);
  refused(withField(b, 0, 1 << 30), /dim is 1073741824/);
  refused(withField(b, 1, -3), /hidden_dim is -3/);
  refused(withField(b, 2, 0), /n_layers is 0/);
  refused(withField(b, 2, 2 ** 31 - 1), /n_layers is 2147483647/);
  refused(withField(b, 3, 7), /n_heads \(7\) does not divide dim \(64\)/);
  refused(withField(b, 4, 3), /n_kv_heads \(3\) does not divide n_heads \(8\)/);
  refused(
    withField(b, 4, 16),
    /n_kv_heads is 16; it must be an integer from 1 to 8/,
  );
  refused(withField(b, 3, 64), /head size .* is odd|n_kv_heads \(4\)/);
  refused(withField(b, 5, 0), /vocab_size is 0/);
  refused(withField(b, 5, -(2 ** 31)), /vocab_size is 2147483648/);
  refused(withField(b, 6, 0), /seq_len is 0/);
  // Plausible fields that do not match the file's size.
  refused(withField(b, 5, 513), /has 1056540 bytes, but .* has 1056796/);
  refused(withField(b, 5, -512), /separate classifier\) has 1187612/);
  refused(withField(b, 1, 171), /The file is truncated|does not describe/);
});

Deno.test("llama2c: a truncated checkpoint is refused at every cut", async () => {
  const b = await Deno.readFile(STORIES);
  const withoutRope = b.length - 2 * 4 * 512 * 4;
  const cuts = [0, 1, 3, 4, 27, 28, 29, 100, 4096, b.length >> 1];
  for (let i = 1; i < 40; i++) cuts.push(Math.floor((b.length * i) / 40) + i);
  cuts.push(withoutRope - 1, withoutRope + 1, b.length - 4, b.length - 1);
  for (const cut of cuts) {
    refused(b.subarray(0, cut), /ends early|truncated|does not describe/);
  }
  refused(
    b.subarray(0, 20),
    /header field vocab_size at byte 20 needs 4 bytes, 0 left/,
  );
  const longer = new Uint8Array(b.length + 4);
  longer.set(b);
  refused(longer, /does not describe this file/);
});

Deno.test("llama2c: newer export versions (magic ak42) are named", () => {
  const b = new Uint8Array(256);
  const d = new DataView(b.buffer);
  d.setUint32(0, 0x616b3432, true);
  d.setInt32(4, 2, true);
  refused(b, /export version 2 \(magic "ak42"\)/);
});

Deno.test("llama2c: a bad context-length override is refused", async () => {
  const b = await Deno.readFile(STORIES);
  for (const n of [0, -1, 1.5, 2 ** 30]) {
    assert.throws(
      () => readLlama2c(b, "x.bin", { contextLength: n }),
      /context length override/,
    );
  }
});
