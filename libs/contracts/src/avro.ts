// avsc glue shared by both codecs: schema parsing with one set of options, validation with field paths, resolvers,
// and a bounds-checking pre-pass over untrusted Avro binary.
import avro from 'avsc';
import { ContractError } from './errors.js';
import type { JsonValue } from './generated/schemas.js';

export type AvroType = avro.Type;
type AvroResolver = ReturnType<AvroType['createResolver']>;

/** Parses a schema (JSON value or text). Throws ContractError MALFORMED when it is not a valid Avro schema. */
export function parseSchema(schema: JsonValue | string): AvroType {
  let json: unknown = schema;
  if (typeof schema === 'string') {
    try {
      json = JSON.parse(schema);
    } catch (cause) {
      throw new ContractError('MALFORMED', 'schema is not JSON', { cause });
    }
  }
  try {
    // A fresh registry per schema: named types of one schema never leak into another.
    return avro.Type.forSchema(json as avro.Schema, { wrapUnions: 'auto', registry: {} });
  } catch (cause) {
    throw new ContractError('MALFORMED', `not a valid Avro schema: ${(cause as Error).message}`, { cause });
  }
}

/** Every named type a schema defines (records, enums, fixed), by full name. */
export function namedTypes(schema: JsonValue): Map<string, AvroType> {
  const registry: Record<string, AvroType> = {};
  avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto', registry });
  return new Map(Object.entries(registry));
}

/** The parsing canonical form (Avro specification) of a type: what fingerprints are computed over. */
export function canonicalForm(type: AvroType): string {
  return JSON.stringify(type.schema());
}

/** Field paths where `value` does not match `type` (empty when it matches). */
export function invalidPaths(type: AvroType, value: unknown): string[] {
  const paths: string[] = [];
  type.isValid(value, {
    errorHook: (path: string[]) => {
      paths.push(path.length === 0 ? '(root)' : path.join('.'));
    },
  });
  return paths;
}

/** Throws INVALID_VALUE naming the failing field paths (never the values) unless `value` matches `type`. */
export function assertValid(
  type: AvroType,
  value: unknown,
  what: string,
  details: { topic?: string } = {},
): void {
  if (type.isValid(value)) return;
  const paths = invalidPaths(type, value);
  throw new ContractError('INVALID_VALUE', `${what}: invalid value at ${paths.join(', ') || '(root)'}`, {
    ...details,
    paths,
    schemaName: type.name,
  });
}

/**
 * A resolver reading data written with `writer` as `reader`, or undefined when the two are the same schema.
 * Throws INCOMPATIBLE_SCHEMA when the reader cannot read the writer's data (Avro schema resolution rules).
 */
export function resolverFor(reader: AvroType, writer: AvroType): AvroResolver | undefined {
  if (canonicalForm(reader) === canonicalForm(writer) && sameDefaults(reader, writer)) return undefined;
  try {
    return reader.createResolver(writer);
  } catch (cause) {
    throw new ContractError(
      'INCOMPATIBLE_SCHEMA',
      `${reader.name ?? reader.typeName} cannot read data written with ${writer.name ?? writer.typeName}: ${(cause as Error).message}`,
      { cause },
    );
  }
}

function sameDefaults(a: AvroType, b: AvroType): boolean {
  return JSON.stringify(a.schema({ exportAttrs: true })) === JSON.stringify(b.schema({ exportAttrs: true }));
}

/** Whether `reader` can read everything `writer` wrote (BACKWARD compatibility of reader against writer). */
export function canRead(reader: AvroType, writer: AvroType): { ok: true } | { ok: false; why: string } {
  try {
    reader.createResolver(writer);
    return { ok: true };
  } catch (error) {
    return { ok: false, why: (error as Error).message };
  }
}

export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes Avro binary at `bytes[offset..]` written with `writer`, read as `reader`.
 * Untrusted input: a bounds-checking walk runs first (see framingCheck), then avsc decodes; any avsc failure
 * becomes a ContractError, never anything else.
 */
export function decodeBody(
  bytes: Buffer,
  offset: number,
  writer: AvroType,
  reader: AvroType,
  resolver?: AvroResolver,
): unknown {
  framingCheck(writer)(bytes, offset);
  const body = offset === 0 ? bytes : bytes.subarray(offset);
  try {
    return resolver ? reader.fromBuffer(body, resolver) : reader.fromBuffer(body);
  } catch (cause) {
    const message = (cause as Error).message ?? String(cause);
    if (/truncated/.test(message))
      throw new ContractError('TRUNCATED', 'input ends inside a value', { cause });
    throw new ContractError('MALFORMED', `cannot decode ${reader.name ?? reader.typeName}: ${message}`, {
      cause,
    });
  }
}

// ---- framing check ----
// Written by hand because avsc trusts what it reads: an array or map block count of 2^40 taken from hostile bytes
// makes it allocate and loop long past the end of the buffer. This walk follows the writer schema with every
// length, count and index checked against the bytes that remain, in one linear pass, and rejects trailing bytes.

type Skip = (buf: Buffer, pos: number) => number;
const checks = new WeakMap<AvroType, (buf: Buffer, offset: number) => void>();

function truncated(): never {
  throw new ContractError('TRUNCATED', 'input ends inside a value');
}
function malformed(what: string): never {
  throw new ContractError('MALFORMED', `malformed Avro binary: ${what}`);
}

/** Reads a zig-zag varint; huge magnitudes come back as ±Infinity (never valid as a length, count or index). */
function readLong(buf: Buffer, pos: number, out: { v: number }): number {
  let result = 0;
  let scale = 1;
  let byte: number;
  let i = 0;
  do {
    if (pos >= buf.length) truncated();
    byte = buf[pos++]!;
    if (++i > 10) malformed('varint longer than 10 bytes');
    result += (byte & 0x7f) * scale;
    scale *= 128;
  } while (byte & 0x80);
  if (!Number.isSafeInteger(result)) {
    out.v = result % 2 === 0 ? Infinity : -Infinity;
  } else {
    out.v = result % 2 === 0 ? result / 2 : -(result + 1) / 2;
  }
  return pos;
}

interface AvroTypeShape {
  typeName: string;
  fields?: Array<{ type: AvroType }>;
  itemsType?: AvroType;
  valuesType?: AvroType;
  types?: AvroType[];
  symbols?: string[];
  size?: number;
  underlyingType?: AvroType;
}

function minSize(type: AvroType, seen = new Set<AvroType>()): number {
  const t = type as unknown as AvroTypeShape;
  if (t.typeName === 'null') return 0;
  if (t.typeName === 'fixed') return t.size ?? 0;
  if (t.typeName === 'record' || t.typeName === 'error') {
    if (seen.has(type)) return 1;
    seen.add(type);
    return (t.fields ?? []).reduce((n, f) => n + minSize(f.type, seen), 0);
  }
  if (t.underlyingType) return minSize(t.underlyingType, seen);
  return 1;
}

function compileSkip(type: AvroType, memo: Map<AvroType, Skip>): Skip {
  const known = memo.get(type);
  if (known) return known;
  let impl: Skip = () => 0;
  const indirect: Skip = (buf, pos) => impl(buf, pos);
  memo.set(type, indirect); // recursive schemas refer back through the indirection
  const t = type as unknown as AvroTypeShape;
  const n = { v: 0 };
  const fixedWidth =
    (width: number): Skip =>
    (buf, pos) =>
      pos + width > buf.length ? truncated() : pos + width;
  switch (t.typeName) {
    case 'null':
      impl = (_buf, pos) => pos;
      break;
    case 'boolean':
      impl = (buf, pos) => {
        if (pos >= buf.length) truncated();
        if (buf[pos]! > 1) malformed('boolean byte is neither 0 nor 1');
        return pos + 1;
      };
      break;
    case 'int':
    case 'long':
      impl = (buf, pos) => readLong(buf, pos, n);
      break;
    case 'float':
      impl = fixedWidth(4);
      break;
    case 'double':
      impl = fixedWidth(8);
      break;
    case 'fixed':
      impl = fixedWidth(t.size ?? 0);
      break;
    case 'bytes':
    case 'string':
      impl = (buf, pos) => {
        pos = readLong(buf, pos, n);
        if (n.v < 0) malformed('negative length');
        if (n.v > buf.length - pos) truncated();
        return pos + n.v;
      };
      break;
    case 'enum': {
      const count = t.symbols?.length ?? 0;
      impl = (buf, pos) => {
        pos = readLong(buf, pos, n);
        if (n.v < 0 || n.v >= count) malformed('enum index out of range');
        return pos;
      };
      break;
    }
    case 'array':
    case 'map': {
      const item = compileSkip((t.itemsType ?? t.valuesType)!, memo);
      const key = t.typeName === 'map' ? compileSkip(avro.Type.forSchema('string'), memo) : undefined;
      const itemMin = minSize((t.itemsType ?? t.valuesType)!) + (key ? 1 : 0);
      impl = (buf, pos) => {
        for (;;) {
          pos = readLong(buf, pos, n);
          let count = n.v;
          if (count === 0) return pos;
          if (count < 0) {
            count = -count;
            pos = readLong(buf, pos, n); // block size in bytes
            if (n.v < 0) malformed('negative block size');
            if (n.v > buf.length - pos) truncated();
          }
          if (itemMin > 0 ? count * itemMin > buf.length - pos : count > 1_000_000) {
            if (itemMin > 0) truncated();
            malformed('block count too large');
          }
          for (let i = 0; i < count; i++) {
            if (key) pos = key(buf, pos);
            pos = item(buf, pos);
          }
        }
      };
      break;
    }
    case 'record':
    case 'error': {
      const fields = (t.fields ?? []).map((f) => compileSkip(f.type, memo));
      impl = (buf, pos) => {
        for (const field of fields) pos = field(buf, pos);
        return pos;
      };
      break;
    }
    case 'union:wrapped':
    case 'union:unwrapped': {
      const branches = (t.types ?? []).map((b) => compileSkip(b, memo));
      impl = (buf, pos) => {
        pos = readLong(buf, pos, n);
        const branch = branches[n.v];
        if (branch === undefined) malformed('union branch index out of range');
        return branch(buf, pos);
      };
      break;
    }
    default:
      if (t.underlyingType) impl = compileSkip(t.underlyingType, memo);
      else throw new ContractError('MALFORMED', `unsupported Avro type ${t.typeName}`);
  }
  return indirect;
}

/** The bounds-checking walk for a writer type (compiled once per type). */
export function framingCheck(type: AvroType): (buf: Buffer, offset: number) => void {
  let check = checks.get(type);
  if (!check) {
    const skip = compileSkip(type, new Map());
    check = (buf, offset) => {
      const end = skip(buf, offset);
      if (end !== buf.length) malformed(`${buf.length - end} trailing byte(s)`);
    };
    checks.set(type, check);
  }
  return check;
}
