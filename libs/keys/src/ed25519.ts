import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  KeyObject,
  sign,
  verify,
} from 'node:crypto';
import { inspect } from 'node:util';
import { toBase64, toBytes, type BytesLike } from './bytes.js';
import { KeyError } from './errors.js';

/** Ed25519 sizes (RFC 8032). */
export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;

// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

// DER prefix of an Ed25519 PKCS#8 PrivateKeyInfo (RFC 8410 §7) followed by the 32-byte seed.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
]);

/** A public key as raw 32 bytes, SPKI DER bytes, a PEM string, or an already imported KeyObject. */
export type Ed25519PublicKeyInput = Uint8Array | string | KeyObject;

/**
 * The key id of a public key: the first 16 bytes of SHA-256 over its raw 32 bytes, hex. Both adapters and every
 * verifier compute it the same way, so a manifest's key id can be matched without asking the key backend.
 */
export function keyIdOf(rawPublicKey: Uint8Array): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 32);
}

/** Imports an Ed25519 public key (raw, SPKI DER or PEM) once, for repeated verification. */
export function importEd25519PublicKey(input: Ed25519PublicKeyInput): KeyObject {
  if (input instanceof KeyObject) {
    if (input.type !== 'public' || input.asymmetricKeyType !== 'ed25519') {
      throw new KeyError('BAD_PUBLIC_KEY', 'expected an Ed25519 public key');
    }
    return input;
  }
  let key: KeyObject;
  try {
    if (typeof input === 'string') {
      key = createPublicKey({ key: input, format: 'pem' });
    } else if (input.byteLength === ED25519_PUBLIC_KEY_BYTES) {
      key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, input]), format: 'der', type: 'spki' });
    } else {
      key = createPublicKey({ key: Buffer.from(input), format: 'der', type: 'spki' });
    }
  } catch {
    throw new KeyError(
      'BAD_PUBLIC_KEY',
      'not an Ed25519 public key (expected raw 32 bytes, SPKI DER or PEM)',
    );
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new KeyError(
      'BAD_PUBLIC_KEY',
      `expected an Ed25519 public key, got ${key.asymmetricKeyType ?? 'unknown'}`,
    );
  }
  return key;
}

/** The raw 32 bytes of an Ed25519 public key given in any accepted form. */
export function ed25519RawPublicKey(input: Ed25519PublicKeyInput): Uint8Array {
  const spki = importEd25519PublicKey(input).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_PREFIX.byteLength));
}

/** SPKI DER of a raw Ed25519 public key (what X.509 tooling and `createPublicKey` take). */
export function ed25519PublicKeyToSpki(rawPublicKey: Uint8Array): Uint8Array {
  return new Uint8Array(importEd25519PublicKey(rawPublicKey).export({ format: 'der', type: 'spki' }));
}

/** PEM of an Ed25519 public key. */
export function ed25519PublicKeyToPem(input: Ed25519PublicKeyInput): string {
  return importEd25519PublicKey(input).export({ format: 'pem', type: 'spki' }).toString();
}

/**
 * Verifies an Ed25519 signature (pure Ed25519, RFC 8032) with node:crypto only.
 * Returns false for a well-formed signature that does not match; throws KeyError BAD_SIGNATURE_FORMAT for a
 * signature that is not 64 bytes and BAD_PUBLIC_KEY for a key that is not Ed25519.
 */
export function verifyEd25519(
  publicKey: Ed25519PublicKeyInput,
  data: BytesLike,
  signature: Uint8Array,
): boolean {
  const key = importEd25519PublicKey(publicKey);
  assertSignatureFormat(signature);
  return verify(null, toBytes(data), key, signature);
}

export function assertSignatureFormat(signature: unknown): asserts signature is Uint8Array {
  if (!(signature instanceof Uint8Array) || signature.byteLength !== ED25519_SIGNATURE_BYTES) {
    throw new KeyError('BAD_SIGNATURE_FORMAT', `an Ed25519 signature is ${ED25519_SIGNATURE_BYTES} bytes`);
  }
}

/**
 * An Ed25519 private key held locally (a device's identity key, or a key of the local keyring). The key material
 * stays inside a KeyObject: JSON.stringify and console.log show only the public key and key id.
 */
export class Ed25519SigningKey {
  readonly #privateKey: KeyObject;
  /** The public key imported once, so {@link verify} does not re-import it on every call. */
  readonly #publicKeyObject: KeyObject;
  /** Raw 32-byte public key. */
  readonly publicKey: Uint8Array;
  readonly keyId: string;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.#publicKeyObject = createPublicKey(privateKey);
    this.publicKey = ed25519RawPublicKey(this.#publicKeyObject);
    this.keyId = keyIdOf(this.publicKey);
  }

  static generate(): Ed25519SigningKey {
    return new Ed25519SigningKey(generateKeyPairSync('ed25519').privateKey);
  }

  /** From PKCS#8 DER bytes (what {@link exportPkcs8} writes, and what OpenSSL writes with `-outform DER`). */
  static fromPkcs8(der: Uint8Array): Ed25519SigningKey {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
    } catch {
      throw new KeyError('BAD_PRIVATE_KEY', 'not a PKCS#8 private key');
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new KeyError('BAD_PRIVATE_KEY', 'expected an Ed25519 private key');
    return new Ed25519SigningKey(key);
  }

  /** From the raw 32-byte seed (RFC 8032 "private key"). */
  static fromSeed(seed: Uint8Array): Ed25519SigningKey {
    if (!(seed instanceof Uint8Array) || seed.byteLength !== 32) {
      throw new KeyError('BAD_PRIVATE_KEY', 'an Ed25519 seed is 32 bytes');
    }
    return Ed25519SigningKey.fromPkcs8(Buffer.concat([PKCS8_PREFIX, seed]));
  }

  /** From a PKCS#8 PEM string. */
  static fromPem(pem: string): Ed25519SigningKey {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      throw new KeyError('BAD_PRIVATE_KEY', 'not a PEM private key');
    }
    if (key.asymmetricKeyType !== 'ed25519')
      throw new KeyError('BAD_PRIVATE_KEY', 'expected an Ed25519 private key');
    return new Ed25519SigningKey(key);
  }

  /** A 64-byte Ed25519 signature over data. */
  sign(data: BytesLike): Uint8Array {
    return new Uint8Array(sign(null, toBytes(data), this.#privateKey));
  }

  verify(data: BytesLike, signature: Uint8Array): boolean {
    return verifyEd25519(this.#publicKeyObject, data, signature);
  }

  /** The private key as PKCS#8 DER, for the caller to store (mode 0600, or a secure element). */
  exportPkcs8(): Uint8Array {
    return new Uint8Array(this.#privateKey.export({ format: 'der', type: 'pkcs8' }));
  }

  exportPem(): string {
    return this.#privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  toJSON(): { type: 'ed25519'; keyId: string; publicKey: string } {
    return { type: 'ed25519', keyId: this.keyId, publicKey: toBase64(this.publicKey) };
  }

  [inspect.custom](): string {
    return `Ed25519SigningKey { keyId: '${this.keyId}' }`;
  }
}

/** Signs with a local private key (PKCS#8 DER, PEM, or an Ed25519SigningKey). */
export function signEd25519(
  privateKey: Ed25519SigningKey | Uint8Array | string,
  data: BytesLike,
): Uint8Array {
  const key =
    privateKey instanceof Ed25519SigningKey
      ? privateKey
      : typeof privateKey === 'string'
        ? Ed25519SigningKey.fromPem(privateKey)
        : Ed25519SigningKey.fromPkcs8(privateKey);
  return key.sign(data);
}
