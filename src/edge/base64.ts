/**
 * Base64 both ways with nothing but atob/btoa, which every JavaScript
 * runtime has: the edge bundle carries the model's bytes as a string.
 */

export function encodeBase64(bytes: Uint8Array): string {
  let out = "";
  // btoa takes a "binary string"; encode slices (a multiple of 3 bytes, so
  // no padding lands mid-string) to bound the spread's arguments.
  const slice = 3 * 8192;
  for (let i = 0; i < bytes.length; i += slice) {
    out += btoa(String.fromCharCode(...bytes.subarray(i, i + slice)));
  }
  return out;
}

export function decodeBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
