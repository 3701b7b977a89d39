// What a failed Vault request becomes: a KeyError whose code says what went wrong (unknown key or version, a
// version below the minimum, another key type, an authentication failure, Vault unreachable) and whose message
// keeps only the HTTP status and Vault's own error text, never the client error (its request carries the token).
import { KeyError, type KeyErrorCode } from '../errors.js';
import type { KeyKind } from '../port.js';

/** An answer of a shape this adapter does not know. */
export function malformed(what: string): KeyError {
  return new KeyError('BACKEND_UNAVAILABLE', `Vault gave an answer of unexpected shape to ${what}`);
}

/** Maps a node-vault error. Only status, Vault's own error text (which names paths, never values) and a network error code survive. */
export function mapVaultError(
  what: string,
  error: unknown,
  kind: KeyKind | undefined,
  authFailure: KeyErrorCode | undefined,
): KeyError {
  if (error instanceof KeyError) return error;
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  const status = typeof response?.statusCode === 'number' ? response.statusCode : undefined;
  if (status === undefined) {
    const code = (error as { code?: unknown } | null)?.code;
    return new KeyError(
      'BACKEND_UNAVAILABLE',
      `cannot ${what}: Vault does not answer${typeof code === 'string' ? ` (${code})` : ''}`,
    );
  }
  const errors = (response?.body as { errors?: unknown } | undefined)?.errors;
  const text = (Array.isArray(errors) ? errors.filter((e) => typeof e === 'string').join('; ') : '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
  const detail = text ? `: ${text}` : '';
  if (status === 404 || (status === 400 && /not found/i.test(text))) {
    return new KeyError('UNKNOWN_KEY', `cannot ${what}: no such ${kind === 'seal' ? 'seal key' : 'key'}`);
  }
  if (
    status === 400 &&
    /invalid key version|larger than the latest|too new|key version .*not found|version .*does not exist/i.test(
      text,
    )
  ) {
    return new KeyError('UNKNOWN_KEY', `cannot ${what}: no such key version`);
  }
  if (
    status === 400 &&
    /too old|disallowed by policy|less than the minimum|min(imum)?[_ ]decryption|has been archived/i.test(
      text,
    )
  ) {
    return new KeyError('KEY_DISABLED', `cannot ${what}: that key version is no longer allowed${detail}`);
  }
  if (status === 400 && /does not support|unsupported operation|key type/i.test(text)) {
    return new KeyError('KEY_TYPE_MISMATCH', `cannot ${what}: the key is of another type${detail}`);
  }
  if (
    status === 400 &&
    authFailure &&
    /authentication failed|invalid ciphertext|unable to decrypt|failed to decrypt|decode/i.test(text)
  ) {
    return new KeyError(
      authFailure,
      `cannot ${what}: authentication failed (altered, or wrapped by another key)`,
    );
  }
  if (status === 403)
    return new KeyError(
      'BACKEND_UNAVAILABLE',
      `cannot ${what}: permission denied (check the token's policy)`,
    );
  return new KeyError('BACKEND_UNAVAILABLE', `cannot ${what}: Vault answered HTTP ${status}${detail}`);
}
