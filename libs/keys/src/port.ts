import type { BytesLike } from './bytes.js';
import { KeyError } from './errors.js';
import type { Sealed } from './hpke.js';

/** What a named key is for. A name holds one kind of key for its whole life. */
export type KeyKind = 'signing' | 'seal' | 'kek';

/** One version of a named key, without material. */
export interface KeyVersionInfo {
  name: string;
  kind: KeyKind;
  version: number;
  /** For signing and seal keys: {@link keyIdOf} the public key. For key-encryption keys: `<name>@v<version>`. */
  keyId: string;
  /** ISO 8601. */
  createdAt: string;
}

/** One version of a signing key's public half: what verifiers and release manifests need. */
export interface SigningPublicKey extends KeyVersionInfo {
  kind: 'signing';
  /** Raw 32-byte Ed25519 public key (see ed25519PublicKeyToPem / ed25519PublicKeyToSpki for other forms). */
  publicKey: Uint8Array;
}

/** The public half of an HPKE recipient key: what devices seal to. */
export interface SealPublicKey extends KeyVersionInfo {
  kind: 'seal';
  /** Raw 32-byte X25519 public key. */
  publicKey: Uint8Array;
}

export interface SignatureResult {
  keyId: string;
  version: number;
  /** Raw 64-byte Ed25519 signature; verifiable with verifyEd25519 and the version's public key. */
  signature: Uint8Array;
}

/** A fresh data key: use `plaintext` (32 bytes) with encryptWithDataKey, then drop it; store `wrapped`. */
export interface DataKey {
  plaintext: Uint8Array;
  /** The data key encrypted under the key-encryption key; opaque text, safe to store beside the data. */
  wrapped: string;
  kekVersion: number;
}

export interface KeyProviderHealth {
  ok: boolean;
  backend: 'local' | 'vault';
  /** Human-readable; never contains key material or tokens. */
  detail: string;
}

/**
 * The KeyProvider port: named keys with versions, kept by a backend that never hands private material to callers.
 * Every method throws KeyError (see KeyErrorCode) and nothing else.
 */
export interface KeyProvider {
  readonly backend: 'local' | 'vault';

  /** Creates an Ed25519 signing key (version 1); idempotent for an existing signing key. Returns the latest version. */
  createSigningKey(name: string): Promise<SigningPublicKey>;
  /** Signs with the latest version. */
  sign(name: string, data: BytesLike): Promise<SignatureResult>;
  /**
   * True when the signature is valid for `version`, or — without `version` — for any usable version.
   * False for a well-formed signature that does not verify; KeyError BAD_SIGNATURE_FORMAT for one that is not
   * 64 bytes, UNKNOWN_KEY for an unknown name or version.
   */
  verify(name: string, data: BytesLike, signature: Uint8Array, version?: number): Promise<boolean>;
  /** All versions' public keys, oldest first. */
  publicKeys(name: string): Promise<SigningPublicKey[]>;
  /** Adds a version to a signing key or key-encryption key; the new version signs/wraps, old versions still verify/unwrap. */
  rotate(name: string): Promise<KeyVersionInfo>;

  /** Creates an HPKE recipient key (e.g. one per round); idempotent for an existing seal key. */
  createSealKey(name: string): Promise<SealPublicKey>;
  sealPublicKey(name: string): Promise<SealPublicKey>;
  /** Opens a message sealed (see `seal`) to the named key; TAMPERED when ciphertext, enc, info or aad were altered. */
  open(name: string, sealed: Sealed | Uint8Array, info?: BytesLike, aad?: BytesLike): Promise<Uint8Array>;
  /** Destroys an HPKE recipient key (after its round): messages sealed to it can no longer be opened. */
  deleteSealKey(name: string): Promise<void>;

  /** Creates an AES-256-GCM key-encryption key (e.g. one per tenant); idempotent. */
  createKeyEncryptionKey(name: string): Promise<KeyVersionInfo>;
  /** A fresh 256-bit data key, with its copy wrapped under the latest version of the key-encryption key. */
  generateDataKey(kekName: string): Promise<DataKey>;
  /** The plaintext of a wrapped data key. TAMPERED when it was altered or wrapped by another key. */
  unwrapDataKey(kekName: string, wrapped: string): Promise<Uint8Array>;

  health(): Promise<KeyProviderHealth>;
  /** Releases resources; later calls fail with KeyError CLOSED. Idempotent. */
  close(): Promise<void>;
}

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Key names are path-safe (they become file keys and Vault path segments): `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`. */
export function assertKeyName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !KEY_NAME.test(name) || name.includes('..')) {
    throw new KeyError(
      'BAD_KEY_NAME',
      'a key name is 1-128 characters of [A-Za-z0-9_.-], starting with a letter or digit, without ".."',
    );
  }
}

export function assertVersion(version: unknown): asserts version is number {
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new KeyError('UNKNOWN_KEY', 'a key version is a positive integer');
  }
}
