/** A schema as a registry holds it under a subject. */
export interface RegisteredSchema {
  /** Global schema id (the 4 bytes after the magic byte of the Confluent wire format). */
  id: number;
  subject: string;
  /** Version within the subject; undefined when the adapter cannot tell cheaply. */
  version: number | undefined;
  /** The schema JSON text. */
  schema: string;
}

/**
 * The SchemaRegistry port (Confluent semantics): ids are global, the same schema registered again returns the same
 * id, and registering under a subject checks BACKWARD compatibility with the subject's latest schema.
 * Adapters: EmbeddedSchemaRegistry (node:sqlite) and ConfluentSchemaRegistry (any Confluent-compatible registry).
 */
export interface SchemaRegistry {
  /**
   * Registers `schemaJson` under `subject` and returns its id. Throws ContractError INCOMPATIBLE_SCHEMA when a reader
   * with the new schema cannot read data written with the subject's latest schema, MALFORMED for an invalid schema.
   */
  register(subject: string, schemaJson: string): Promise<number>;
  /** The schema JSON of an id; throws ContractError UNKNOWN_SCHEMA_ID when the registry has no such id. */
  getById(id: number): Promise<string>;
  /** The latest schema of a subject, or undefined when the subject has none. */
  getLatest(subject: string): Promise<RegisteredSchema | undefined>;
  close(): Promise<void>;
}
