import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { inspect } from 'node:util';
import {
  Aes256Gcm,
  CipherSuite,
  DecapError,
  DeserializeError,
  DhkemX25519HkdfSha256,
  EncapError,
  HkdfSha256,
  OpenError,
} from '@hpke/core';
import { concatBytes, ownBytes, toBase64, toBytes, type BytesLike } from './bytes.js';
import { keyIdOf } from './ed25519.js';
import { KeyError } from './errors.js';

/**
 * HPKE (RFC 9180) in mode base with one fixed suite: KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF HKDF-SHA256
 * (0x0001), AEAD AES-256-GCM (0x0002). The protocol itself comes from @hpke/core (maintained, RFC-vector tested);
 * this module only fixes the suite, the byte encoding and the error mapping.
 */
export const HPKE_SUITE = { kem: 0x0020, kdf: 0x0001, aead: 0x0002 } as const;

/** X25519 sizes: public key = encapsulated key = private key = 32 bytes. */
export const X25519_KEY_BYTES = 32;

/** First byte of an encoded sealed message: version 1 = the suite above, followed by enc (32 bytes), then ct. */
export const SEALED_FORMAT_V1 = 0x01;
const AEAD_TAG_BYTES = 16;

export interface Sealed {
  /** The encapsulated ephemeral public key (32 bytes). */
  enc: Uint8Array;
  /** AES-256-GCM ciphertext with its 16-byte tag. */
  ciphertext: Uint8Array;
}

export interface SealOptions {
  /** Application info bound into the key schedule (e.g. `edgefl/fl.update/<round id>`). Default empty. */
  info?: BytesLike;
  /** Additional authenticated data (e.g. the device id). Default empty. */
  aad?: BytesLike;
}

type HpkeKey = Awaited<ReturnType<CipherSuite['kem']['deserializePrivateKey']>>;

let sharedSuite: CipherSuite | undefined;
function suite(): CipherSuite {
  sharedSuite ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes256Gcm(),
  });
  return sharedSuite;
}

/** Encrypts plaintext to a recipient's raw X25519 public key. */
export async function seal(
  recipientPublicKey: Uint8Array,
  plaintext: BytesLike,
  options: SealOptions = {},
): Promise<Sealed> {
  if (!(recipientPublicKey instanceof Uint8Array) || recipientPublicKey.byteLength !== X25519_KEY_BYTES) {
    throw new KeyError('BAD_PUBLIC_KEY', `an X25519 public key is ${X25519_KEY_BYTES} bytes`);
  }
  const pt = ownBytes(toBytes(plaintext));
  const info = ownBytes(toBytes(options.info ?? ''));
  const aad = ownBytes(toBytes(options.aad ?? ''));
  const s = suite();
  try {
    const recipientKey = await s.kem.deserializePublicKey(ownBytes(recipientPublicKey));
    const sender = await s.createSenderContext({
      recipientPublicKey: recipientKey,
      info,
    });
    const ciphertext = await sender.seal(pt, aad);
    return { enc: ownBytes(sender.enc), ciphertext: ownBytes(ciphertext) };
  } catch (error) {
    if (error instanceof DeserializeError || error instanceof EncapError) {
      throw new KeyError('BAD_PUBLIC_KEY', 'the recipient public key is not a usable X25519 key');
    }
    throw new KeyError('DECRYPT_FAILED', 'HPKE seal failed');
  }
}

/** The compact byte form of a sealed message: [0x01][enc: 32 bytes][ciphertext]. */
export function encodeSealed(sealed: Sealed): Uint8Array {
  if (sealed.enc.byteLength !== X25519_KEY_BYTES) throw new KeyError('BAD_FORMAT', 'enc must be 32 bytes');
  return concatBytes(Uint8Array.of(SEALED_FORMAT_V1), sealed.enc, sealed.ciphertext);
}

/** Parses {@link encodeSealed}'s output; KeyError BAD_FORMAT when it cannot be a sealed message. */
export function decodeSealed(bytes: Uint8Array): Sealed {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength < 1 + X25519_KEY_BYTES + AEAD_TAG_BYTES) {
    throw new KeyError('BAD_FORMAT', 'a sealed message is at least 49 bytes');
  }
  if (bytes[0] !== SEALED_FORMAT_V1) {
    throw new KeyError('BAD_FORMAT', `unknown sealed message version ${bytes[0]}`);
  }
  return {
    enc: bytes.slice(1, 1 + X25519_KEY_BYTES),
    ciphertext: bytes.slice(1 + X25519_KEY_BYTES),
  };
}

function asSealed(sealed: Sealed | Uint8Array): Sealed {
  if (sealed instanceof Uint8Array) return decodeSealed(sealed);
  if (
    typeof sealed !== 'object' ||
    sealed === null ||
    !(sealed.enc instanceof Uint8Array) ||
    !(sealed.ciphertext instanceof Uint8Array) ||
    sealed.enc.byteLength !== X25519_KEY_BYTES ||
    sealed.ciphertext.byteLength < AEAD_TAG_BYTES
  ) {
    throw new KeyError(
      'BAD_FORMAT',
      'a sealed message has a 32-byte enc and a ciphertext of at least 16 bytes',
    );
  }
  return sealed;
}

/**
 * An X25519 HPKE recipient private key held locally. Key material stays in private fields: JSON.stringify and
 * console.log show only the public key and key id.
 */
export class SealPrivateKey {
  readonly #raw: Uint8Array;
  #imported: Promise<HpkeKey> | undefined;
  /** Raw 32-byte X25519 public key, what senders seal to. */
  readonly publicKey: Uint8Array;
  readonly keyId: string;

  private constructor(raw: Uint8Array, publicKey: Uint8Array) {
    this.#raw = raw;
    this.publicKey = publicKey;
    this.keyId = keyIdOf(publicKey);
  }

  static generate(): SealPrivateKey {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const d = privateKey.export({ format: 'jwk' }).d;
    const x = publicKey.export({ format: 'jwk' }).x;
    if (d === undefined || x === undefined)
      throw new KeyError('BAD_PRIVATE_KEY', 'X25519 key generation failed');
    return new SealPrivateKey(
      new Uint8Array(Buffer.from(d, 'base64url')),
      new Uint8Array(Buffer.from(x, 'base64url')),
    );
  }

  /** From a raw 32-byte X25519 private key (RFC 7748 scalar, as {@link exportRaw} gives it). */
  static async fromRaw(raw: Uint8Array): Promise<SealPrivateKey> {
    if (!(raw instanceof Uint8Array) || raw.byteLength !== X25519_KEY_BYTES) {
      throw new KeyError('BAD_PRIVATE_KEY', `an X25519 private key is ${X25519_KEY_BYTES} bytes`);
    }
    const s = suite();
    try {
      const key = await s.kem.deserializePrivateKey(ownBytes(raw));
      const publicKey = x25519PublicKeyOf(raw);
      const result = new SealPrivateKey(ownBytes(raw), publicKey);
      result.#imported = Promise.resolve(key);
      return result;
    } catch (error) {
      if (error instanceof KeyError) throw error;
      throw new KeyError('BAD_PRIVATE_KEY', 'not a usable X25519 private key');
    }
  }

  /** Decrypts a message sealed to this key. TAMPERED when ciphertext, enc, info or aad differ from the sender's. */
  async open(sealed: Sealed | Uint8Array, options: SealOptions = {}): Promise<Uint8Array> {
    const message = asSealed(sealed);
    const info = ownBytes(toBytes(options.info ?? ''));
    const aad = ownBytes(toBytes(options.aad ?? ''));
    const s = suite();
    this.#imported ??= s.kem.deserializePrivateKey(ownBytes(this.#raw));
    let recipient;
    try {
      recipient = await s.createRecipientContext({
        recipientKey: await this.#imported,
        enc: ownBytes(message.enc),
        info,
      });
    } catch (error) {
      if (error instanceof DecapError || error instanceof DeserializeError) {
        throw new KeyError('DECRYPT_FAILED', 'the encapsulated key of the sealed message is not usable');
      }
      throw new KeyError('DECRYPT_FAILED', 'HPKE open failed');
    }
    try {
      return ownBytes(await recipient.open(ownBytes(message.ciphertext), aad));
    } catch (error) {
      if (error instanceof OpenError) {
        throw new KeyError(
          'TAMPERED',
          'sealed message authentication failed (altered, or wrong key, info or aad)',
        );
      }
      throw new KeyError('DECRYPT_FAILED', 'HPKE open failed');
    }
  }

  /** The raw private scalar, for the caller to store securely (the local keyring, a KV secret). */
  exportRaw(): Uint8Array {
    return ownBytes(this.#raw);
  }

  toJSON(): { type: 'x25519-hpke'; keyId: string; publicKey: string } {
    return { type: 'x25519-hpke', keyId: this.keyId, publicKey: toBase64(this.publicKey) };
  }

  [inspect.custom](): string {
    return `SealPrivateKey { keyId: '${this.keyId}' }`;
  }
}

function x25519PublicKeyOf(raw: Uint8Array): Uint8Array {
  const pkcs8 = Buffer.concat([X25519_PKCS8_PREFIX, raw]);
  const publicKey = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }));
  const x = publicKey.export({ format: 'jwk' }).x;
  if (x === undefined) throw new KeyError('BAD_PRIVATE_KEY', 'not a usable X25519 private key');
  return new Uint8Array(Buffer.from(x, 'base64url'));
}

// DER prefix of an X25519 PKCS#8 PrivateKeyInfo (RFC 8410 §7) followed by the 32-byte key.
const X25519_PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);

/** Opens with a local private key (functional form of {@link SealPrivateKey.open}). */
export function open(
  recipientPrivateKey: SealPrivateKey,
  sealed: Sealed | Uint8Array,
  options: SealOptions = {},
): Promise<Uint8Array> {
  return recipientPrivateKey.open(sealed, options);
}
