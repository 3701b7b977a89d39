// @edgefl/contracts: Avro schemas (generated types), the topic catalog, and the codecs.
// The Confluent registry client is loaded lazily by ConfluentSchemaRegistry; devices can import
// @edgefl/contracts/edge, which leaves out the registries altogether.
export * from './edge.js';
export { SCHEMAS, SCHEMA_FILES } from './generated/schemas.js';
export { RELEASED_SCHEMAS, RELEASES, type ReleasedSchema } from './generated/released.js';
export { SCHEMA_NAMES, isSchemaName, schemaText, schemaJson } from './schemas.js';
export {
  TopicCodec,
  readWireHeader,
  WIRE_MAGIC,
  WIRE_HEADER_BYTES,
  type TopicCodecOptions,
  type DecodedAny,
} from './topic-codec.js';
export type { SchemaRegistry, RegisteredSchema } from './registry/port.js';
export { EmbeddedSchemaRegistry, type EmbeddedSchemaRegistryOptions } from './registry/embedded.js';
export { ConfluentSchemaRegistry, type ConfluentSchemaRegistryOptions } from './registry/confluent.js';
export { isBackwardCompatible, checkAgainstReleases, type CompatibilityProblem } from './compatibility.js';
