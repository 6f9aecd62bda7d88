/**
 * safetensors, read and written: an 8-byte little-endian header length N,
 * N bytes of JSON ({ name: { dtype, shape, data_offsets: [begin, end] },
 * "__metadata__": { string: string } }), then the tensor bytes, each tensor
 * at data_offsets relative to the end of the header. Readers know nothing
 * of WASM: tensors come back as byte ranges of the file.
 *
 * The reader checks what a corrupt or truncated file gets wrong (header
 * length past the end, bad JSON, unknown dtype, shape and byte size that
 * disagree, offsets outside the data or overlapping) and says which tensor.
 */
import { SeerError } from "../errors.ts";

export type SafeDtype =
  | "F32"
  | "F16"
  | "BF16"
  | "F64"
  | "I32"
  | "I64"
  | "U8"
  | "I8";

const DTYPE_BYTES: Record<SafeDtype, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I32: 4,
  I64: 8,
  U8: 1,
  I8: 1,
};

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** The tensor's bytes (a view into the file). */
  data: Uint8Array;
}

export interface SafeTensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Headers larger than this are refused: a corrupt length, not a real header. */
const MAX_HEADER = 100 << 20;

function corrupt(source: string, what: string): never {
  throw new SeerError(
    "invalid_model",
    `${source}: not a valid safetensors file: ${what}. The file may be truncated or ` +
      `overwritten; re-create it (or restore it from a copy).`,
  );
}

export function parseSafetensors(
  bytes: Uint8Array,
  source = "safetensors",
): SafeTensorsFile {
  if (bytes.length < 8) {
    corrupt(
      source,
      `only ${bytes.length} bytes, shorter than the 8-byte header length`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER, bytes.length - 8))) {
    corrupt(
      source,
      `header length ${n} exceeds the ${bytes.length - 8} bytes after it`,
    );
  }
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(
      new TextDecoder("utf-8", { fatal: true }).decode(
        bytes.subarray(8, 8 + headerLen),
      ),
    );
  } catch (e) {
    corrupt(source, `header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    corrupt(source, "header is not a JSON object");
  }
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null) {
        corrupt(source, "__metadata__ is not an object");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          corrupt(source, `metadata "${k}" is not a string`);
        }
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const t = raw as {
      dtype?: unknown;
      shape?: unknown;
      data_offsets?: unknown;
    };
    if (typeof t !== "object" || t === null) {
      corrupt(source, `entry "${name}" is not an object`);
    }
    if (typeof t.dtype !== "string" || !(t.dtype in DTYPE_BYTES)) {
      corrupt(
        source,
        `tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)}`,
      );
    }
    const dtype = t.dtype as SafeDtype;
    if (
      !Array.isArray(t.shape) ||
      !t.shape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      corrupt(
        source,
        `tensor "${name}" has a bad shape ${JSON.stringify(t.shape)}`,
      );
    }
    const shape = t.shape as number[];
    const off = t.data_offsets;
    if (
      !Array.isArray(off) || off.length !== 2 ||
      !off.every((o) => Number.isInteger(o) && o >= 0) || off[0] > off[1]
    ) {
      corrupt(
        source,
        `tensor "${name}" has bad data_offsets ${JSON.stringify(off)}`,
      );
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) {
      corrupt(
        source,
        `tensor "${name}" ends at byte ${end} of ${dataLen} data bytes`,
      );
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (count * DTYPE_BYTES[dtype] !== end - begin) {
      corrupt(
        source,
        `tensor "${name}" is ${dtype}[${shape.join(", ")}] = ${
          count * DTYPE_BYTES[dtype]
        } bytes, ` +
          `but its offsets span ${end - begin}`,
      );
    }
    ranges.push([begin, end, name]);
    tensors.set(name, {
      dtype,
      shape,
      data: bytes.subarray(dataStart + begin, dataStart + end),
    });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      corrupt(
        source,
        `tensors "${ranges[i - 1][2]}" and "${ranges[i][2]}" overlap`,
      );
    }
  }
  return { tensors, metadata };
}

export interface TensorToWrite {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  data: Uint8Array;
}

/** Serialises tensors (in the given order) and string metadata. */
export function encodeSafetensors(
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name) || t.name === "__metadata__") {
      throw new SeerError(
        "invalid_argument",
        `safetensors: duplicate or reserved tensor name "${t.name}"`,
      );
    }
    seen.add(t.name);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (count * DTYPE_BYTES[t.dtype] !== t.data.length) {
      throw new SeerError(
        "invalid_argument",
        `safetensors: tensor "${t.name}" ${t.dtype}[${t.shape}] needs ${
          count * DTYPE_BYTES[t.dtype]
        } bytes, got ${t.data.length}`,
      );
    }
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.data.length],
    };
    offset += t.data.length;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces to a multiple of 8, so tensor data is aligned.
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.length;
  }
  return out;
}

/** The bytes of a Float32Array (little-endian hosts: all WASM hosts). */
export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A tensor's values as f32 (F32 copied; F16/BF16 widened). */
export function tensorToF32(t: SafeTensor, name = "tensor"): Float32Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.dtype === "F32") {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(t.data);
    return out;
  }
  if (t.dtype === "F16" || t.dtype === "BF16") {
    const dv = new DataView(
      t.data.buffer,
      t.data.byteOffset,
      t.data.byteLength,
    );
    const out = new Float32Array(count);
    const f = new Float32Array(1), u = new Uint32Array(f.buffer);
    for (let i = 0; i < count; i++) {
      const h = dv.getUint16(2 * i, true);
      if (t.dtype === "BF16") {
        u[0] = h << 16;
        out[i] = f[0];
      } else {
        const s = h >> 15 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
        out[i] = e === 0
          ? s * m * 2 ** -24
          : e === 31
          ? (m ? NaN : s * Infinity)
          : s * (1 + m / 1024) * 2 ** (e - 15);
      }
    }
    return out;
  }
  throw new SeerError(
    "invalid_model",
    `${name}: dtype ${t.dtype} cannot be read as floats`,
  );
}
