import assert from "node:assert/strict";
import { readTokenizerBin } from "../../src/tokenizer/tokenizer_bin.ts";
import { SeerError } from "../../src/errors.ts";
import { model, tinyVocabulary, tokenizerBin } from "../formats/fixtures.ts";

Deno.test("tokenizer.bin: tok512 and the 32k vocabulary read whole", () => {
  const small = readTokenizerBin(Deno.readFileSync(model("tok512.bin")), "t");
  assert.equal(small.tokens.length, 512);
  assert.equal(small.tokens[1], "\n<s>\n");
  assert.equal(small.tokens[3], "<0x00>");
  assert.equal(small.tokens[259], " t");
  assert.equal(small.scores[261], -2);
  const big = readTokenizerBin(Deno.readFileSync(model("tokenizer.bin")), "t");
  assert.equal(big.tokens.length, 32000);
  assert.equal(big.tokens[29871], " ");
  assert.equal(big.spaceMarker, " ");
});

Deno.test("tokenizer.bin: a written vocabulary reads back equal", () => {
  const v = tinyVocabulary(300);
  assert.deepEqual(readTokenizerBin(tokenizerBin(v), "tiny"), v);
});

function refused(bytes: Uint8Array, pattern: RegExp) {
  assert.throws(
    () => readTokenizerBin(bytes, "bad-tok.bin"),
    (e: unknown) =>
      e instanceof SeerError && e.code === "invalid_model" &&
      e.message.startsWith("bad-tok.bin: ") && pattern.test(e.message),
  );
}

Deno.test("tokenizer.bin: corrupt files are refused with the reason", () => {
  const good = tokenizerBin(tinyVocabulary(300));
  // Every cut inside an entry is a truncation; cuts at entry boundaries
  // leave a shorter but well-formed vocabulary (checkVocabulary's job).
  let truncations = 0;
  for (let cut = 0; cut < good.length; cut += 3) {
    try {
      readTokenizerBin(good.subarray(0, cut), "bad-tok.bin");
    } catch (e) {
      assert.ok(
        e instanceof SeerError && e.code === "invalid_model",
        String(e),
      );
      assert.match(e.message, /^bad-tok.bin: /);
      truncations++;
    }
  }
  assert.ok(truncations > good.length / 3 * 0.5);
  const negative = good.slice();
  new DataView(negative.buffer).setInt32(8, -5, true); // length of token 0
  refused(negative, /token 0 has length -5/);
  const huge = good.slice();
  new DataView(huge.buffer).setInt32(8, 1 << 30, true);
  refused(huge, /token 0 has length 1073741824/);
  const badUtf8 = good.slice();
  badUtf8[12] = 0xff; // first byte of "<unk>"
  refused(badUtf8, /not valid UTF-8/);
  const model = Deno.readFileSync(
    new URL("../../models/stories260K.bin", import.meta.url),
  );
  refused(model.subarray(0, 1000), /not a tokenizer.bin/);
});
