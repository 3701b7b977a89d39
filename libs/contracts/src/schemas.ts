// The current schemas as avsc types, parsed once from the JSON embedded by codegen (nothing reads .avsc at run time).
import { parseSchema, namedTypes, type AvroType } from './avro.js';
import { SCHEMAS, type JsonValue } from './generated/schemas.js';
import type { RecordName, SchemaName } from './generated/types.js';

const topLevel = new Map<SchemaName, AvroType>();
let named: Map<string, AvroType> | undefined;

export const SCHEMA_NAMES = Object.keys(SCHEMAS) as SchemaName[];

export function isSchemaName(name: string): name is SchemaName {
  return Object.hasOwn(SCHEMAS, name);
}

/** The avsc type of a current top-level schema. */
export function schemaType(name: SchemaName): AvroType {
  let type = topLevel.get(name);
  if (!type) {
    type = parseSchema(SCHEMAS[name]);
    topLevel.set(name, type);
  }
  return type;
}

/** The schema text registered with a schema registry: the .avsc content, compact (logical types and docs kept). */
export function schemaText(name: SchemaName): string {
  return JSON.stringify(SCHEMAS[name]);
}

export function schemaJson(name: SchemaName): JsonValue {
  return SCHEMAS[name];
}

/** Every named record of the current schemas (top-level and nested) by full name. */
export function recordTypes(): Map<string, AvroType> {
  if (!named) {
    named = new Map();
    for (const name of SCHEMA_NAMES) {
      for (const [full, type] of namedTypes(SCHEMAS[name])) {
        if (type.typeName === 'record') named.set(full, type);
      }
    }
  }
  return named;
}

export function isRecordName(name: string): name is RecordName {
  return recordTypes().has(name);
}
