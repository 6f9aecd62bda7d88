import assert from "node:assert/strict";
import {
  encodeSafetensors,
  f32Bytes,
  parseSafetensors,
  tensorToF32,
} from "../../src/formats/safetensors.ts";
import { randomF32 } from "../helpers.ts";

const invalid = (e: Error & { code?: string }) => e.code === "invalid_model";

function sample(): Uint8Array {
  return encodeSafetensors([
    { name: "a", dtype: "F32", shape: [2, 3], data: f32Bytes(randomF32(6, 1)) },
    {
      name: "b.bias",
      dtype: "F32",
      shape: [5],
      data: f32Bytes(randomF32(5, 2)),
    },
    {
      name: "h",
      dtype: "F16",
      shape: [3],
      data: new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c]),
    },
  ], { format: "test", note: "ünïcode" });
}

Deno.test("safetensors: round trip of tensors and metadata, header aligned to 8", () => {
  const bytes = sample();
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const f = parseSafetensors(bytes);
  assert.deepEqual(f.metadata, { format: "test", note: "ünïcode" });
  assert.deepEqual([...f.tensors.keys()], ["a", "b.bias", "h"]);
  assert.deepEqual(f.tensors.get("a")!.shape, [2, 3]);
  assert.deepEqual(tensorToF32(f.tensors.get("a")!), randomF32(6, 1));
  assert.deepEqual(tensorToF32(f.tensors.get("b.bias")!), randomF32(5, 2));
  // F16 1.0, −2.0, +inf widened to f32.
  assert.deepEqual([...tensorToF32(f.tensors.get("h")!)], [1, -2, Infinity]);
});

Deno.test("safetensors: reads a file laid out by hand as the format specifies", () => {
  // Header {"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}, unpadded.
  const header = new TextEncoder().encode(
    `{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
  );
  const bytes = new Uint8Array(8 + header.length + 8);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, 8);
  new DataView(bytes.buffer).setFloat32(8 + header.length, 1.5, true);
  new DataView(bytes.buffer).setFloat32(8 + header.length + 4, -3, true);
  const f = parseSafetensors(bytes);
  assert.deepEqual([...tensorToF32(f.tensors.get("x")!)], [1.5, -3]);
  assert.deepEqual(f.metadata, {});
});

Deno.test("safetensors: corrupt files are refused with what is wrong", () => {
  const good = sample();
  const cases: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /shorter than the 8-byte/],
    ["truncated data", good.subarray(0, good.length - 3), /ends at byte/],
    [
      "huge header length",
      (() => {
        const b = good.slice();
        new DataView(b.buffer).setBigUint64(0, 1n << 40n, true);
        return b;
      })(),
      /header length/,
    ],
    [
      "garbage header",
      (() => {
        const b = good.slice();
        b[8] = 0x7b;
        b[9] = 0x21;
        return b;
      })(),
      /not JSON/,
    ],
  ];
  const edit = (fn: (h: Record<string, Record<string, unknown>>) => void) => {
    const n = Number(new DataView(good.buffer).getBigUint64(0, true));
    const h = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + n)));
    fn(h);
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.length + good.length - 8 - n);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(good.subarray(8 + n), 8 + json.length);
    return out;
  };
  cases.push([
    "unknown dtype",
    edit((h) => (h.a.dtype = "Q4")),
    /unknown dtype/,
  ]);
  cases.push([
    "shape vs bytes",
    edit((h) => (h.a.shape = [3, 3])),
    /offsets span/,
  ]);
  cases.push([
    "overlap",
    edit((h) => (h["b.bias"].data_offsets = [0, 20])),
    /overlap/,
  ]);
  cases.push([
    "negative shape",
    edit((h) => (h.a.shape = [-2, -3])),
    /bad shape/,
  ]);
  cases.push([
    "metadata value",
    edit((h) => (h.__metadata__.format = 3 as unknown as string)),
    /not a string/,
  ]);
  for (const [what, bytes, re] of cases) {
    assert.throws(
      () => parseSafetensors(bytes, "t.safetensors"),
      (e: Error & { code?: string }) => {
        assert.ok(invalid(e), `${what}: ${e}`);
        assert.match(e.message, re, what);
        assert.match(e.message, /t\.safetensors/);
        return true;
      },
    );
  }
});

Deno.test("safetensors: the writer refuses inconsistent tensors", () => {
  assert.throws(
    () =>
      encodeSafetensors([{
        name: "a",
        dtype: "F32",
        shape: [3],
        data: new Uint8Array(8),
      }]),
    /needs 12 bytes/,
  );
  assert.throws(
    () =>
      encodeSafetensors([
        { name: "a", dtype: "U8", shape: [1], data: new Uint8Array(1) },
        { name: "a", dtype: "U8", shape: [1], data: new Uint8Array(1) },
      ]),
    /duplicate/,
  );
});
