/**
 * Cryptographic building blocks of secure aggregation, all from node:crypto: X25519 key agreement, HKDF-SHA256,
 * AES-256-GCM for the shares, AES-256-CTR as the PRG of the masks, SHA-256 commitments, Ed25519 device signatures.
 * Nothing here is hand-rolled crypto; the functions only fix encodings and domain separation.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  randomBytes,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { InvalidParameterError } from '../errors.js';
import type { UniformSource } from '../types.js';

/** Source of secret random bytes. The default is node:crypto's CSPRNG; tests and oracles may pass a seeded DRBG. */
export type RandomBytes = (length: number) => Uint8Array;

/** Signs bytes with the device's long-term Ed25519 key (passed in, as libs/model does for manifests). */
export type Signer = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** Checks a device's signature with its registered public key; false for an unknown device or a bad signature. */
export type SignatureVerifier = (
  deviceId: string,
  bytes: Uint8Array,
  signature: Uint8Array,
) => boolean | Promise<boolean>;

export const defaultRandomBytes: RandomBytes = (length) => randomBytes(length);

const ZERO_IV = Buffer.alloc(16);
let zeros = Buffer.alloc(0);

/**
 * `length` bytes of AES-256-CTR keystream under `key` (32 bytes) from counter 0: the cryptographic PRG of the
 * masks (Bonawitz et al. 2017, §4 "PRG"). Each key is used for one stream only.
 */
export function aesCtrStream(key: Uint8Array, length: number): Buffer {
  if (zeros.length < length) zeros = Buffer.alloc(Math.max(length, zeros.length * 2));
  const cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  const out = cipher.update(zeros.subarray(0, length));
  cipher.final();
  return out;
}

/**
 * A deterministic DRBG from a seed (AES-256-CTR keyed by SHA-256(seed)): for tests and the command-line oracle,
 * so a run can be repeated. Never for a real round: keys and masks would be as secret as the seed.
 */
export function seededRandomBytes(seed: string | Uint8Array): RandomBytes {
  const key = createHash('sha256').update('edgefl-secagg/drbg').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  return (length) => cipher.update(Buffer.alloc(length));
}

/**
 * Uniform doubles in [0, 1) (53 bits) from AES-256-CTR keyed by `seed` (≥ 16 bytes): the shared-seed permutations
 * of the SecAgg+ graph and of the buckets, reproducible on both sides and unpredictable without the seed.
 */
export function cryptoUniform(seed: Uint8Array): UniformSource {
  if (seed.length < 16) throw new InvalidParameterError('a seed needs at least 16 bytes');
  const key = createHash('sha256').update('edgefl-secagg/uniform').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, ZERO_IV);
  const block = Buffer.alloc(4096);
  let words = new Uint32Array(0);
  let pos = 0;
  const next = (): number => {
    if (pos >= words.length) {
      const bytes = cipher.update(block);
      words = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
      pos = 0;
    }
    return words[pos++]!;
  };
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/** An X25519 key pair: the raw 32-byte private scalar (what is secret-shared) and the raw public key. */
export interface X25519KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

// A client agrees k keys with each of its private keys: importing the key once saves ~10% of its time.
const importedPrivate = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();

function x25519Private(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new InvalidParameterError('an X25519 private key has 32 bytes');
  const cached = importedPrivate.get(raw);
  if (cached && equalBytes(cached.bytes, raw)) return cached.key;
  const key = createPrivateKey({
    key: Buffer.concat([X25519_PKCS8_PREFIX, raw]),
    format: 'der',
    type: 'pkcs8',
  });
  importedPrivate.set(raw, { bytes: Uint8Array.from(raw), key });
  return key;
}

function x25519Public(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new InvalidParameterError('an X25519 public key has 32 bytes');
  return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw public key of a raw X25519 private key. */
export function x25519PublicOf(privateKey: Uint8Array): Uint8Array {
  const der = createPublicKey(x25519Private(privateKey)).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(X25519_SPKI_PREFIX.length));
}

export function x25519KeyPair(random: RandomBytes): X25519KeyPair {
  const privateKey = Uint8Array.from(random(32));
  return { privateKey, publicKey: x25519PublicOf(privateKey) };
}

/**
 * X25519(private, public) expanded by HKDF-SHA256 (RFC 5869) to a 32-byte key for `info`. Returns null when the
 * peer's key is invalid (OpenSSL refuses an all-zero shared secret, i.e. a low-order point).
 */
export function agreeKey(
  privateKey: Uint8Array,
  publicKey: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
): Uint8Array | null {
  let secret: Buffer;
  try {
    secret = diffieHellman({ privateKey: x25519Private(privateKey), publicKey: x25519Public(publicKey) });
  } catch {
    return null;
  }
  return new Uint8Array(hkdfSync('sha256', secret, salt, info, 32));
}

export function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, 32));
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const NONCE = 12;
const TAG = 16;
/** Bytes AES-256-GCM adds to a plaintext here: the random nonce and the tag. */
export const AEAD_OVERHEAD = NONCE + TAG;

/** AES-256-GCM: nonce ‖ ciphertext ‖ tag, with `aad` authenticated. */
export function seal(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  random: RandomBytes,
): Uint8Array {
  const nonce = random(NONCE);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

/** Opens `seal`'s output; null when it was not made under this key and aad (or was altered). */
export function open(key: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < AEAD_OVERHEAD) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE));
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
    const body = decipher.update(sealed.subarray(NONCE, sealed.length - TAG));
    decipher.final();
    return new Uint8Array(body);
  } catch {
    return null;
  }
}

/** Ed25519 signer over a node:crypto private key (the device key; a Vault or HSM signer fits the same type). */
export function ed25519Signer(privateKey: KeyObject): Signer {
  return (bytes) => new Uint8Array(cryptoSign(null, bytes, privateKey));
}

/** Verifier over a directory of device public keys (Ed25519 KeyObjects by device id). */
export function ed25519Verifier(publicKeys: ReadonlyMap<string, KeyObject>): SignatureVerifier {
  return (deviceId, bytes, signature) => {
    const key = publicKeys.get(deviceId);
    if (!key) return false;
    try {
      return cryptoVerify(null, bytes, key, signature);
    } catch {
      return false;
    }
  };
}

const encoder = new TextEncoder();

/** Unambiguous concatenation: every part is prefixed with its 4-byte big-endian length (domain separation). */
export function frame(...parts: Array<string | Uint8Array>): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((a, b) => a + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const b of bytes) {
    view.setUint32(at, b.length);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/** A copy in fresh memory (`Buffer#slice` would be a view). */
export function copyBytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
