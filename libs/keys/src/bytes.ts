/** Bytes, or a string taken as UTF-8. */
export type BytesLike = Uint8Array | string;

import { KeyError } from './errors.js';

const encoder = new TextEncoder();

/** Bytes of a BytesLike; KeyError BAD_FORMAT for anything else (callers may pass untyped input). */
export function toBytes(value: BytesLike): Uint8Array {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  throw new KeyError('BAD_FORMAT', 'expected bytes (Uint8Array) or a string');
}

/** A copy that owns its own ArrayBuffer (WebCrypto and Buffer views can share pooled memory). */
export function ownBytes(value: ArrayBuffer | Uint8Array): Uint8Array {
  return value instanceof Uint8Array ? new Uint8Array(value) : new Uint8Array(value.slice(0));
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Strict base64 decode: returns undefined when the text is not canonical base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return undefined;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) return undefined;
  return new Uint8Array(bytes);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}
