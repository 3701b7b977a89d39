/** Why a contract operation refused its input. Stable strings: they end up in dead letters and metrics labels. */
export type ContractErrorCode =
  | 'TRUNCATED'
  | 'BAD_MAGIC'
  | 'UNKNOWN_SCHEMA_ID'
  | 'UNKNOWN_FINGERPRINT'
  | 'UNKNOWN_TOPIC'
  | 'INVALID_VALUE'
  | 'MALFORMED'
  | 'INCOMPATIBLE_SCHEMA';

export const CONTRACT_ERROR_CODES: readonly ContractErrorCode[] = [
  'TRUNCATED',
  'BAD_MAGIC',
  'UNKNOWN_SCHEMA_ID',
  'UNKNOWN_FINGERPRINT',
  'UNKNOWN_TOPIC',
  'INVALID_VALUE',
  'MALFORMED',
  'INCOMPATIBLE_SCHEMA',
];

export interface ContractErrorDetails {
  /** Field paths that failed validation (INVALID_VALUE), e.g. `event.io.edgefl.fl.RoundOpened.quorum`. */
  paths?: readonly string[];
  topic?: string;
  schemaId?: number;
  schemaName?: string;
  cause?: unknown;
}

/**
 * The one error type of libs/contracts. Messages name fields, topics and schema ids, never values (a value may be a
 * secret or personal data).
 */
export class ContractError extends Error {
  override readonly name = 'ContractError';
  readonly code: ContractErrorCode;
  readonly paths: readonly string[];
  readonly topic: string | undefined;
  readonly schemaId: number | undefined;
  readonly schemaName: string | undefined;

  constructor(code: ContractErrorCode, message: string, details: ContractErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.paths = details.paths ?? [];
    this.topic = details.topic;
    this.schemaId = details.schemaId;
    this.schemaName = details.schemaName;
  }

  static is(error: unknown, code?: ContractErrorCode): error is ContractError {
    return error instanceof ContractError && (code === undefined || error.code === code);
  }
}
