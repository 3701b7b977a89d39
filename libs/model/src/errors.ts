/**
 * Typed errors of libs/model. Each carries a stable `code` (services count them in metrics and return them in
 * problem+json) and a one-line message that never contains key material.
 */

/** A model spec or a set of weights does not describe a model we can build. */
export class ModelSpecError extends Error {
  override readonly name = 'ModelSpecError';
}

export type FormatErrorCode =
  | 'bad-magic'
  | 'unsupported-version'
  | 'truncated'
  | 'bad-header'
  | 'bad-tensor'
  | 'trailing-bytes'
  | 'unsupported-onnx';

/** A file (artifact container, ONNX model, .f32 file) is malformed, truncated or of an unsupported version. */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';
  constructor(
    readonly code: FormatErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type DeltaErrorCode =
  | 'bad-magic'
  | 'unsupported-version'
  | 'truncated'
  | 'bad-header'
  | 'corrupt'
  | 'source-mismatch'
  | 'target-mismatch'
  | 'format-mismatch'
  | 'bad-option';

/** A delta is malformed, does not apply to the given source, or its result does not match the target's sha256. */
export class DeltaError extends Error {
  override readonly name = 'DeltaError';
  constructor(
    readonly code: DeltaErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Why a release manifest or an artifact was refused (The Update Framework's checks). */
export type ManifestRejection =
  | 'malformed'
  | 'bad-signature'
  | 'unknown-key'
  | 'expired'
  | 'rollback'
  | 'length-mismatch'
  | 'hash-mismatch'
  | 'too-large'
  | 'wrong-model';

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly reason: ManifestRejection,
    message: string,
  ) {
    super(message);
  }
}

/** A chunk tree, chunk or proof is malformed. */
export class ChunkTreeError extends Error {
  override readonly name = 'ChunkTreeError';
}
