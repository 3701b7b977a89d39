// avsc glue shared by both codecs: schema parsing with one set of options, validation with field paths, resolvers,
// decoding of untrusted bytes into ContractErrors, and array/map types guarded against hostile block counts.
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
    return avro.Type.forSchema(json as avro.Schema, {
      wrapUnions: 'auto',
      registry: {},
      typeHook: guardedTypes,
    });
  } catch (cause) {
    throw new ContractError('MALFORMED', `not a valid Avro schema: ${(cause as Error).message}`, { cause });
  }
}

/** Every named type a schema defines (records, enums, fixed), by full name. */
export function namedTypes(schema: JsonValue): Map<string, AvroType> {
  const registry: Record<string, AvroType> = {};
  avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'auto', registry, typeHook: guardedTypes });
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

/**
 * Paths of strings (values and map keys) in `value` that are not well-formed Unicode, i.e. hold a lone surrogate.
 * Avro strings are UTF-8 (Avro 1.11 spec, "Primitive Types"), which has no encoding for a lone surrogate: avsc
 * would write CESU-style bytes (`ed a0 80`) that standard readers (Apache Avro's Python and Java libraries) refuse.
 * avsc's isValid accepts them, so this walk is ours.
 */
export function illFormedStringPaths(value: unknown, path = '', out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (!value.isWellFormed()) out.push(path || '(root)');
  } else if (Array.isArray(value)) {
    value.forEach((item, i) => illFormedStringPaths(item, `${path}[${i}]`, out));
  } else if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    for (const [key, item] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      if (!key.isWellFormed()) out.push(`${at} (key)`);
      illFormedStringPaths(item, at, out);
    }
  }
  return out;
}

/** True when a value of one Avro type holds an ill-formed string; null when the type can hold no string. */
type IllFormedCheck = (value: unknown) => boolean;
const illFormedChecks = new WeakMap<AvroType, IllFormedCheck | null>();

/**
 * The encode path's fast check, compiled once per type from the schema: it visits only the fields that can hold a
 * string (a record of numbers or an array of floats costs nothing) and builds no paths — those are found by
 * illFormedStringPaths only once a check fails. Unions fall back to a generic walk of the value (wrapped or not).
 */
function illFormedCheckOf(type: AvroType): IllFormedCheck | null {
  const cached = illFormedChecks.get(type);
  if (cached !== undefined) return cached;
  illFormedChecks.set(type, hasIllFormedString); // a recursive type meets itself: the generic walk is safe
  const check = compileIllFormedCheck(type);
  illFormedChecks.set(type, check);
  return check;
}

function compileIllFormedCheck(type: AvroType): IllFormedCheck | null {
  const t = type as AvroType & {
    fields?: Array<{ name: string; type: AvroType }>;
    itemsType?: AvroType;
    valuesType?: AvroType;
    types?: AvroType[];
    underlyingType?: AvroType;
  };
  const kind = t.typeName;
  if (kind === 'string') return (v) => typeof v === 'string' && !v.isWellFormed();
  if (kind.startsWith('logical:') && t.underlyingType) return illFormedCheckOf(t.underlyingType);
  if (kind === 'record' || kind === 'error') {
    // Generated once per record type, like avsc's own readers and writers: one straight-line function whose
    // string fields are tested inline (about 10 ns each) instead of through a closure per field.
    const nested: IllFormedCheck[] = [];
    const terms = (t.fields ?? []).flatMap((f) => {
      const at = `v[${JSON.stringify(f.name)}]`;
      if (holdsOnlyStrings(f.type)) return [`(typeof ${at} === 'string' && !${at}.isWellFormed())`];
      const check = illFormedCheckOf(f.type);
      if (!check) return [];
      nested.push(check);
      return [`c[${nested.length - 1}](${at})`];
    });
    if (terms.length === 0) return null;
    return new Function('c', `return (v) => ${terms.join(' || ')};`)(nested) as IllFormedCheck;
  }
  if (kind === 'array' && t.itemsType) {
    const item = illFormedCheckOf(t.itemsType);
    if (!item) return null;
    return (v) => (v as unknown[]).some(item);
  }
  if (kind === 'map' && t.valuesType) {
    const values = illFormedCheckOf(t.valuesType);
    return (v) => {
      for (const [key, item] of Object.entries(v as Record<string, unknown>))
        if (!key.isWellFormed() || (values !== null && values(item))) return true;
      return false;
    };
  }
  if (kind.startsWith('union') && (t.types ?? []).some((branch) => illFormedCheckOf(branch) !== null))
    return hasIllFormedString;
  return null;
}

/** A string (or a logical type over one), or a union of null and string read unwrapped: a string or null. */
function holdsOnlyStrings(type: AvroType): boolean {
  const t = type as AvroType & { types?: AvroType[]; underlyingType?: AvroType };
  if (t.typeName === 'string') return true;
  if (t.typeName.startsWith('logical:')) return t.underlyingType?.typeName === 'string';
  return (
    t.typeName === 'union:unwrapped' &&
    (t.types ?? []).every((b) => b.typeName === 'string' || b.typeName === 'null')
  );
}

/** illFormedStringPaths without the paths: stops at the first ill-formed string, allocates nothing. */
function hasIllFormedString(value: unknown): boolean {
  if (typeof value === 'string') return !value.isWellFormed();
  if (Array.isArray(value)) return value.some(hasIllFormedString);
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value)) {
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      if (!key.isWellFormed() || hasIllFormedString((value as Record<string, unknown>)[key])) return true;
    }
  }
  return false;
}

/**
 * Throws INVALID_VALUE naming the failing field paths (never the values) unless `value` matches `type` and every
 * string in it is well-formed Unicode (so no encoder of ours writes a record a standard Avro reader rejects).
 */
export function assertValid(
  type: AvroType,
  value: unknown,
  what: string,
  details: { topic?: string } = {},
): void {
  if (type.isValid(value)) {
    if (!illFormedCheckOf(type)?.(value)) return;
    const illFormed = illFormedStringPaths(value);
    throw new ContractError(
      'INVALID_VALUE',
      `${what}: a string that is not well-formed Unicode (lone surrogate) at ${illFormed.join(', ')}`,
      { ...details, paths: illFormed, schemaName: type.name },
    );
  }
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
  // Same parsing canonical form = same binary layout: the reader type decodes the bytes as they are.
  if (reader === writer || canonicalForm(reader) === canonicalForm(writer)) return undefined;
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

// One scratch buffer for all encodes (encoding is synchronous, so it is never shared by two at once): avsc's own
// toBuffer() allocates and copies more than needed, and the header would need another concat.
const SCRATCH_BYTES = 64 * 1024;
let scratch = Buffer.allocUnsafe(SCRATCH_BYTES);

/** `header` followed by the Avro binary of `value` (already validated), in one right-sized buffer. */
export function encodeWithHeader(type: AvroType, header: Buffer, value: unknown): Buffer {
  header.copy(scratch, 0);
  const end = type.encode(value, scratch, header.length);
  if (end >= 0) {
    const out = Buffer.allocUnsafe(end);
    scratch.copy(out, 0, 0, end);
    return out;
  }
  // Larger than the scratch buffer (e.g. a model update): encode once more into a buffer of the exact size, and
  // keep the scratch buffer small.
  const out = Buffer.allocUnsafe(scratch.length - end);
  header.copy(out, 0);
  if (type.encode(value, out, header.length) !== out.length)
    throw new Error('avsc encoded a different length twice');
  scratch = scratch.length === SCRATCH_BYTES ? scratch : Buffer.allocUnsafe(SCRATCH_BYTES);
  return out;
}

/**
 * Decodes Avro binary at `bytes[offset..]` as `reader` (through `resolver` when another schema wrote it).
 * Untrusted input: any avsc failure becomes a ContractError (TRUNCATED or MALFORMED), never anything else, and
 * hostile block counts are refused by the guarded array/map types below.
 */
export function decodeBody(
  bytes: Buffer,
  offset: number,
  reader: AvroType,
  resolver?: AvroResolver,
): unknown {
  let decoded: { value: unknown; offset: number };
  try {
    // decode() reads in place at `offset` (fromBuffer() would need a subarray, one more Buffer per message).
    decoded = reader.decode(bytes, offset, resolver);
  } catch (cause) {
    const message = (cause as Error)?.message ?? String(cause);
    throw new ContractError('MALFORMED', `cannot decode ${reader.name ?? reader.typeName}: ${message}`, {
      cause,
    });
  }
  if (decoded.offset < 0) throw new ContractError('TRUNCATED', 'input ends inside a value');
  if (decoded.offset !== bytes.length) throw new ContractError('MALFORMED', 'trailing bytes after the value');
  return decoded.value;
}

// ---- guarded arrays and maps ----
// avsc trusts the block counts it reads: a count of 2^31 taken from hostile bytes makes it loop (and allocate) long
// past the end of the buffer before it notices the truncation. These subclasses read exactly as avsc does, but give
// up on a block that claims more items than there are bytes left (each item of a non-empty type takes at least one
// byte). Blocks of up to MAX_ZERO_WIDTH_BLOCK items pass regardless, for arrays of zero-width items (null, empty
// records), which are valid and cost no bytes. Resolvers reuse these _read methods (avsc copies them), so data of
// older writers is guarded too. Written by hand: avsc has no option for this.

const MAX_ZERO_WIDTH_BLOCK = 65_536;

interface Tap {
  buf: Buffer;
  pos: number;
  readLong(): number;
  skipLong(): void;
  readString(): string;
  _invalidate(): void;
}
interface Reads {
  _read(tap: Tap): unknown;
}

/** The item count of the next block (0 at the end), or -1 when the block cannot be honest. */
function blockCount(tap: Tap): number {
  let n = tap.readLong();
  if (n < 0) {
    n = -n;
    tap.skipLong(); // block size in bytes
  }
  if (n > tap.buf.length - tap.pos && n > MAX_ZERO_WIDTH_BLOCK) {
    tap._invalidate(); // fromBuffer then reports a truncated buffer
    return -1;
  }
  return n;
}

class GuardedArrayType extends avro.types.ArrayType {
  _read(this: { itemsType: Reads }, tap: Tap): unknown[] {
    const items = this.itemsType;
    const value: unknown[] = [];
    let n: number;
    if (items instanceof avro.types.FloatType) {
      // Float arrays (model outputs) read in one loop over the bytes instead of a tap call per item. Not for a
      // resolver (e.g. int written, float read): that is not a FloatType and takes the general loop.
      while ((n = blockCount(tap)) > 0) {
        const buf = tap.buf;
        const end = tap.pos + 4 * n;
        if (end > buf.length) {
          tap._invalidate();
          break;
        }
        for (let pos = tap.pos; pos < end; pos += 4) value.push(buf.readFloatLE(pos));
        tap.pos = end;
      }
      return value;
    }
    while ((n = blockCount(tap)) > 0) {
      while (n--) value.push(items._read(tap));
    }
    return value;
  }
}

class GuardedMapType extends avro.types.MapType {
  _read(this: { valuesType: Reads }, tap: Tap): Record<string, unknown> {
    const values = this.valuesType;
    const value: Record<string, unknown> = {};
    let n: number;
    while ((n = blockCount(tap)) > 0) {
      while (n--) {
        const key = tap.readString();
        value[key] = values._read(tap);
      }
    }
    return value;
  }
}

// ---- strings ----
// V8 string creation dominates decoding (a utf8Slice call costs ~45 ns whatever the length). Short strings of an event
// repeat a lot (tenant, model id, device id, label, error code): a small direct-mapped cache, keyed by the exact bytes,
// hands back the string already made, as V8's JSON.parse does by internalising short strings. A hit compares every
// byte, so a cached string is always exactly what utf8Slice would return; memory is bounded (SLOTS x MAX bytes);
// hostile input can only cost misses. uuid strings are unique by nature and skip the cache.
// Written by hand: avsc has no string cache.

const CACHE_BITS = 12;
const CACHE_SLOTS = 1 << CACHE_BITS;
const CACHE_MAX_BYTES = 32;
const cachedStrings: string[] = new Array<string>(CACHE_SLOTS).fill('');
const cachedLengths = new Int32Array(CACHE_SLOTS).fill(-1);
const cachedBytes = new Uint8Array(CACHE_SLOTS * CACHE_MAX_BYTES);

interface Utf8Buffer extends Buffer {
  utf8Slice(start: number, end: number): string;
}

function cachedString(buf: Utf8Buffer, pos: number, len: number): string {
  let h = len;
  for (let i = pos, end = pos + len; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193); // FNV-1a
  const slot = h >>> (32 - CACHE_BITS);
  const base = slot * CACHE_MAX_BYTES;
  if (cachedLengths[slot] === len) {
    let i = 0;
    while (i < len && cachedBytes[base + i] === buf[pos + i]) i++;
    if (i === len) return cachedStrings[slot]!;
  }
  const value = buf.utf8Slice(pos, pos + len);
  for (let i = 0; i < len; i++) cachedBytes[base + i] = buf[pos + i]!;
  cachedLengths[slot] = len;
  cachedStrings[slot] = value;
  return value;
}

/** Reads exactly as avsc's StringType (same bounds handling), through the cache for short strings. */
class CachedStringType extends avro.types.StringType {
  _read(tap: Tap): string {
    const len = tap.readLong();
    const buf = tap.buf as Utf8Buffer;
    const pos = tap.pos;
    const end = pos + len;
    if (len < 0 || end > buf.length) {
      tap._invalidate(); // fromBuffer/decode then report a truncated buffer
      return '';
    }
    tap.pos = end;
    return len <= CACHE_MAX_BYTES ? cachedString(buf, pos, len) : buf.utf8Slice(pos, end);
  }
}

function guardedTypes(schema: avro.Schema, opts: unknown): AvroType | undefined {
  if (schema === 'string') return new CachedStringType();
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return undefined;
  const type = (schema as { type?: unknown }).type;
  if (type === 'string' && (schema as { logicalType?: unknown }).logicalType !== 'uuid') {
    return new CachedStringType();
  }
  if (type === 'array') return new GuardedArrayType(schema, opts);
  if (type === 'map') return new GuardedMapType(schema, opts);
  return undefined;
}
