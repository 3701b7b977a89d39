/**
 * Why an update was refused or failed: the errorCode an OtaStatus carries. The Update Framework's attack classes
 * (https://theupdateframework.io/security/) map onto these codes:
 *   arbitrary software installation → bad-signature, unknown-key, hash-mismatch
 *   rollback attack → rollback          freeze attack → expired
 *   endless data attack → too-large     slow retrieval attack → slow-retrieval
 *   mix-and-match attack → wrong-model, wrong-tenant, wrong-hardware
 */
export const OTA_ERROR_CODES = [
  'malformed',
  'bad-signature',
  'unknown-key',
  'expired',
  'rollback',
  'wrong-model',
  'wrong-tenant',
  'wrong-hardware',
  'too-large',
  'length-mismatch',
  'hash-mismatch',
  'truncated',
  'slow-retrieval',
  'download-failed',
  'delta-failed',
  'unsupported-format',
  'validation-failed',
  'disk-budget',
  'apply-failed',
  'load-failed',
  'registry-unavailable',
  'cancelled',
] as const;
export type OtaErrorCode = (typeof OTA_ERROR_CODES)[number];

/** A refused or failed update, with the code reported on `ota-status`. Messages never carry secrets. */
export class OtaError extends Error {
  override readonly name = 'OtaError';
  readonly code: OtaErrorCode;
  constructor(code: OtaErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export type DeviceErrorCode =
  | 'bad-config'
  | 'identity'
  | 'not-registered'
  | 'registry'
  | 'transport'
  | 'timeout'
  | 'cancelled'
  | 'rejected'
  | 'no-model'
  | 'bad-input'
  | 'invalid-update'
  | 'dataset';

/** Anything else the runtime refuses or cannot do, with a stable code. */
export class DeviceError extends Error {
  override readonly name = 'DeviceError';
  readonly code: DeviceErrorCode;
  constructor(code: DeviceErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
