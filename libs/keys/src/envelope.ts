import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { concatBytes, toBytes, type BytesLike } from './bytes.js';
import { KeyError } from './errors.js';

/**
 * Envelope encryption with a data key (AES-256-GCM, node:crypto). Layout of an envelope:
 *
 *   [0x45 'E'][version 0x01][algorithm 0x01 = AES-256-GCM][IV: 12 bytes][ciphertext][tag: 16 bytes]
 *
 * The 3-byte header is authenticated together with the caller's AAD, so neither can be swapped unnoticed. The data
 * key itself comes from a KeyProvider (`generateDataKey`) and is stored only in wrapped form next to the envelope.
 */
export const ENVELOPE_MAGIC = 0x45;
export const ENVELOPE_VERSION = 0x01;
export const ENVELOPE_AES_256_GCM = 0x01;
export const DATA_KEY_BYTES = 32;
const HEADER_BYTES = 3;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A fresh random 256-bit data key (for callers that wrap it themselves). */
export function randomDataKey(): Uint8Array {
  return new Uint8Array(randomBytes(DATA_KEY_BYTES));
}

function checkDataKey(dataKey: Uint8Array): void {
  if (!(dataKey instanceof Uint8Array) || dataKey.byteLength !== DATA_KEY_BYTES) {
    throw new KeyError('BAD_PRIVATE_KEY', `a data key is ${DATA_KEY_BYTES} bytes`);
  }
}

/** Encrypts plaintext under a 32-byte data key; aad (default empty) must be given again to decrypt. */
export function encryptWithDataKey(
  dataKey: Uint8Array,
  plaintext: BytesLike,
  aad: BytesLike = '',
): Uint8Array {
  checkDataKey(dataKey);
  const header = Uint8Array.of(ENVELOPE_MAGIC, ENVELOPE_VERSION, ENVELOPE_AES_256_GCM);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(concatBytes(header, toBytes(aad)));
  const body = Buffer.concat([cipher.update(toBytes(plaintext)), cipher.final()]);
  return concatBytes(header, iv, body, cipher.getAuthTag());
}

/**
 * Decrypts an envelope. KeyError BAD_FORMAT for bytes that are not an envelope of a known version; TAMPERED when
 * authentication fails (altered bytes, other AAD, or another data key).
 */
export function decryptWithDataKey(
  dataKey: Uint8Array,
  envelope: Uint8Array,
  aad: BytesLike = '',
): Uint8Array {
  checkDataKey(dataKey);
  if (!(envelope instanceof Uint8Array) || envelope.byteLength < HEADER_BYTES + IV_BYTES + TAG_BYTES) {
    throw new KeyError('BAD_FORMAT', 'too short to be an encrypted envelope');
  }
  if (envelope[0] !== ENVELOPE_MAGIC) throw new KeyError('BAD_FORMAT', 'not an encrypted envelope');
  if (envelope[1] !== ENVELOPE_VERSION)
    throw new KeyError('BAD_FORMAT', `unknown envelope version ${envelope[1]}`);
  if (envelope[2] !== ENVELOPE_AES_256_GCM)
    throw new KeyError('BAD_FORMAT', `unknown envelope algorithm ${envelope[2]}`);
  const header = envelope.subarray(0, HEADER_BYTES);
  const iv = envelope.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const body = envelope.subarray(HEADER_BYTES + IV_BYTES, envelope.byteLength - TAG_BYTES);
  const tag = envelope.subarray(envelope.byteLength - TAG_BYTES);
  const decipher = createDecipheriv('aes-256-gcm', dataKey, iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(concatBytes(header, toBytes(aad)));
  decipher.setAuthTag(tag);
  try {
    return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
  } catch {
    throw new KeyError('TAMPERED', 'envelope authentication failed (altered, or wrong data key or aad)');
  }
}
