// Edge-safe entry (@edgefl/contracts/edge): types, topic catalog, the single-object codec. No registry client,
// no node:sqlite — what a device needs and nothing else.
export * from './generated/types.js';
export type { JsonValue } from './generated/schemas.js';
export {
  ContractError,
  CONTRACT_ERROR_CODES,
  type ContractErrorCode,
  type ContractErrorDetails,
} from './errors.js';
export * from './topics.js';
export {
  SingleObjectCodec,
  schemaFingerprint,
  SINGLE_OBJECT_MAGIC,
  SINGLE_OBJECT_HEADER_BYTES,
  type DecodedObject,
  type SingleObjectCodecOptions,
} from './single-object.js';
export { rabinFingerprint64 } from './fingerprint.js';
export {
  toSecAggEvent,
  fromSecAggEvent,
  secAggWireBytes,
  throughAvro,
  type SecAggEnvelope,
  type SecAggProtocolMessage,
} from './secagg-wire.js';
