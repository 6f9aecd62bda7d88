/**
 * A bounds-checked little-endian cursor over a file's bytes, shared by the
 * model and tokenizer readers. Every read checks the remaining length first
 * and throws SeerError("invalid_model") naming the file and what was being
 * read, so a truncated or corrupt file can never cause an out-of-bounds
 * read or a RangeError.
 */
import { SeerError } from "../errors.ts";

/** The error every reader throws: the file, then the problem. */
export function invalidModel(source: string, problem: string): SeerError {
  return new SeerError("invalid_model", `${source}: ${problem}`);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export class ByteReader {
  readonly view: DataView;
  pos = 0;

  constructor(readonly bytes: Uint8Array, readonly source: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.byteLength;
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  fail(problem: string): SeerError {
    return invalidModel(this.source, problem);
  }

  /** Throws unless `n` more bytes exist; `what` names the field for the user. */
  need(n: number, what: string): void {
    if (n > this.remaining) {
      throw this.fail(
        `file ends early: ${what} at byte ${this.pos} needs ${n} bytes, ` +
          `${this.remaining} left (file has ${this.length}). ` +
          `The file is truncated or not what its header says; download or convert it again.`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.view.getUint8(this.pos++);
  }

  i8(what: string): number {
    this.need(1, what);
    return this.view.getInt8(this.pos++);
  }

  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  i16(what: string): number {
    this.need(2, what);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f32(what: string): number {
    this.need(4, what);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  f64(what: string): number {
    this.need(8, what);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /**
   * A u64 used as a count or size: refused when above `max`, so that an
   * absurd value is reported as such instead of driving a huge allocation.
   */
  count(what: string, max: number): number {
    const v = this.u64(what);
    if (v > BigInt(max)) {
      throw this.fail(
        `${what} is ${v}, more than the ${max} the rest of the file could hold (at byte ${
          this.pos - 8
        }); the file is truncated or corrupt`,
      );
    }
    return Number(v);
  }

  /** `n` bytes as a view into the file (no copy). */
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** `n` bytes of UTF-8 text; invalid UTF-8 is refused, not replaced. */
  utf8(n: number, what: string): string {
    const at = this.pos;
    const raw = this.take(n, what);
    try {
      return utf8.decode(raw);
    } catch {
      throw this.fail(`${what} at byte ${at} is not valid UTF-8`);
    }
  }
}
