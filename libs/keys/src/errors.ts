/**
 * Why a key operation failed. Stable strings: callers branch on them, metrics count them.
 *
 * - UNKNOWN_KEY: no key of that name (or no such version).
 * - KEY_TYPE_MISMATCH: the key exists but is of another kind (e.g. signing with a seal key).
 * - BAD_KEY_NAME: a key name outside `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
 * - BAD_PUBLIC_KEY / BAD_PRIVATE_KEY: key bytes of the wrong length or encoding.
 * - BAD_SIGNATURE_FORMAT: a signature that is not 64 bytes (Ed25519).
 * - BAD_FORMAT: a sealed message, envelope or wrapped data key that cannot be parsed (too short, unknown version).
 * - TAMPERED: authentication failed — the bytes were altered, or the key, info or aad differ from the sender's.
 * - DECRYPT_FAILED: decryption could not run (e.g. an encapsulated key the KEM rejects).
 * - KEY_DISABLED: the key version exists but may no longer be used (below the backend's minimum version).
 * - KEYRING_INSECURE: the local keyring file is readable or writable by group/others.
 * - KEYRING_CORRUPT: the local keyring file is not a keyring this code understands.
 * - BACKEND_UNAVAILABLE: the key backend (file system, Vault) cannot be reached or refused the request.
 * - BAD_CONFIG: the provider configuration is invalid.
 * - CLOSED: the provider was closed.
 */
export type KeyErrorCode =
  | 'UNKNOWN_KEY'
  | 'KEY_TYPE_MISMATCH'
  | 'BAD_KEY_NAME'
  | 'BAD_PUBLIC_KEY'
  | 'BAD_PRIVATE_KEY'
  | 'BAD_SIGNATURE_FORMAT'
  | 'BAD_FORMAT'
  | 'TAMPERED'
  | 'DECRYPT_FAILED'
  | 'KEY_DISABLED'
  | 'KEYRING_INSECURE'
  | 'KEYRING_CORRUPT'
  | 'BACKEND_UNAVAILABLE'
  | 'BAD_CONFIG'
  | 'CLOSED';

/**
 * The one error type of @edgefl/keys. Its message names keys by name and version only and never carries key
 * material, plaintext or tokens; no underlying error is attached as `cause` when it could carry any of those
 * (e.g. an HTTP client error holding request headers).
 */
export class KeyError extends Error {
  override readonly name = 'KeyError';
  readonly code: KeyErrorCode;

  constructor(code: KeyErrorCode, message: string) {
    super(message);
    this.code = code;
  }

  toJSON(): { name: string; code: KeyErrorCode; message: string } {
    return { name: this.name, code: this.code, message: this.message };
  }
}

export function isKeyError(error: unknown, code?: KeyErrorCode): error is KeyError {
  return error instanceof KeyError && (code === undefined || error.code === code);
}
