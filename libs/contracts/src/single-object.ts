// MQTT payloads in Avro single-object encoding: 0xC3 0x01, the 8-byte little-endian CRC-64-AVRO fingerprint of the
// writer schema's parsing canonical form, then Avro binary. Devices need no registry look-up.
import {
  assertValid,
  canonicalForm,
  decodeBody,
  encodeWithHeader,
  namedTypes,
  resolverFor,
  toBuffer,
  type AvroType,
} from './avro.js';
import { ContractError } from './errors.js';
import { fingerprintBytesLE, rabinFingerprint64 } from './fingerprint.js';
import { RELEASED_SCHEMAS } from './generated/released.js';
import type { JsonValue } from './generated/schemas.js';
import type { RecordName, RecordTypes } from './generated/types.js';
import { recordTypes } from './schemas.js';

export const SINGLE_OBJECT_MAGIC = Buffer.from([0xc3, 0x01]);
export const SINGLE_OBJECT_HEADER_BYTES = 10;

type AvroResolver = ReturnType<AvroType['createResolver']>;

/** A decoded payload whose schema the caller did not name: discriminate on schemaName. */
export type DecodedObject = { [N in RecordName]: { schemaName: N; value: RecordTypes[N] } }[RecordName];

export interface SingleObjectCodecOptions {
  /**
   * Also accept payloads written with released (older) schema versions, resolved to the current schema
   * (default true): devices on older firmware keep talking.
   */
  acceptReleased?: boolean;
  /** More older schema versions (top-level schema JSON) whose payloads to accept, resolved to the current schema. */
  writerSchemas?: readonly JsonValue[];
}

interface Reader {
  type: AvroType;
  header: Buffer;
  /** The 8 fingerprint bytes as two little-endian int32s: the common case (a payload of the current schema of the
   * expected record) is recognised with two integer compares, no key string per message. */
  fpLow: number;
  fpHigh: number;
  /** This record's current schema as a writer (no resolver). */
  current: Writer;
}

interface Writer {
  name: RecordName;
  type: AvroType;
  /** Resolver to the current reader type; undefined when the writer is the current schema. */
  resolver: AvroResolver | undefined;
  /** The resolver could not be built: the reader cannot read this writer. */
  incompatible?: ContractError;
}

/** The single-object fingerprint of a type, as the unsigned 64-bit value. */
export function schemaFingerprint(type: AvroType): bigint {
  return rabinFingerprint64(canonicalForm(type));
}

const fingerprintKey = (fp: bigint) => fingerprintBytesLE(fp).toString('latin1');

export class SingleObjectCodec {
  readonly #readers = new Map<string, Reader>();
  /** Keyed by the 8 fingerprint bytes as a latin1 string: cheaper to build per message than a bigint. */
  readonly #writers = new Map<string, Writer>();

  constructor(options: SingleObjectCodecOptions = {}) {
    for (const [name, type] of recordTypes()) {
      const header = Buffer.concat([SINGLE_OBJECT_MAGIC, fingerprintBytesLE(schemaFingerprint(type))]);
      const current: Writer = { name: name as RecordName, type, resolver: undefined };
      this.#readers.set(name, {
        type,
        header,
        fpLow: header.readInt32LE(2),
        fpHigh: header.readInt32LE(6),
        current,
      });
      this.#writers.set(fingerprintKey(schemaFingerprint(type)), current);
    }
    if (options.acceptReleased ?? true) {
      for (const released of RELEASED_SCHEMAS) this.#addWriters(released.schema);
    }
    for (const schema of options.writerSchemas ?? []) this.#addWriters(schema);
  }

  #addWriters(schema: JsonValue): void {
    for (const [name, type] of namedTypes(schema)) {
      if (type.typeName !== 'record') continue;
      const fp = fingerprintKey(schemaFingerprint(type));
      if (this.#writers.has(fp)) continue;
      const reader = this.#readers.get(name);
      if (!reader) continue; // the record no longer exists: its payloads are unknown to this codec
      try {
        this.#writers.set(fp, { name: name as RecordName, type, resolver: resolverFor(reader.type, type) });
      } catch (error) {
        this.#writers.set(fp, {
          name: name as RecordName,
          type,
          resolver: undefined,
          incompatible: error as ContractError,
        });
      }
    }
  }

  /** Full names of every record this codec encodes. */
  get schemaNames(): RecordName[] {
    return [...this.#readers.keys()] as RecordName[];
  }

  /** The fingerprint (hex, as written little-endian on the wire) of a record's current schema. */
  fingerprintHex(schemaName: RecordName): string {
    return this.#reader(schemaName).header.subarray(2).toString('hex');
  }

  encode<N extends RecordName>(schemaName: N, value: RecordTypes[N]): Buffer {
    const { type, header } = this.#reader(schemaName);
    assertValid(type, value, schemaName);
    return encodeWithHeader(type, header, value);
  }

  decode<N extends RecordName>(bytes: Uint8Array, expectedSchemaName: N): RecordTypes[N];
  decode(bytes: Uint8Array): DecodedObject;
  decode(bytes: Uint8Array, expectedSchemaName?: RecordName): unknown {
    const decoded = this.decodeAny(bytes, expectedSchemaName);
    return expectedSchemaName === undefined ? decoded : decoded.value;
  }

  /** Decodes any known payload; with `expectedSchemaName`, a payload of another record is INCOMPATIBLE_SCHEMA. */
  decodeAny(bytes: Uint8Array, expectedSchemaName?: RecordName): DecodedObject {
    if (!(bytes instanceof Uint8Array)) throw new ContractError('MALFORMED', 'payload must be bytes');
    const buffer = toBuffer(bytes);
    const expected = expectedSchemaName === undefined ? undefined : this.#reader(expectedSchemaName);
    if (buffer.length >= 1 && buffer[0] !== 0xc3)
      throw new ContractError('BAD_MAGIC', 'payload does not start with the single-object marker 0xC3 0x01');
    if (buffer.length >= 2 && buffer[1] !== 0x01)
      throw new ContractError('BAD_MAGIC', 'payload does not start with the single-object marker 0xC3 0x01');
    if (buffer.length < SINGLE_OBJECT_HEADER_BYTES) {
      throw new ContractError(
        'TRUNCATED',
        `payload has ${buffer.length} byte(s), the single-object header needs ${SINGLE_OBJECT_HEADER_BYTES}`,
      );
    }
    const writer =
      expected !== undefined &&
      buffer.readInt32LE(2) === expected.fpLow &&
      buffer.readInt32LE(6) === expected.fpHigh
        ? expected.current
        : this.#writer(buffer, expectedSchemaName);
    const reader = expected ?? this.#readers.get(writer.name)!;
    const value = decodeBody(buffer, SINGLE_OBJECT_HEADER_BYTES, reader.type, writer.resolver);
    return { schemaName: writer.name, value } as DecodedObject;
  }

  /** The writer of a payload whose fingerprint is not the expected record's current one. */
  #writer(buffer: Buffer, expectedSchemaName: RecordName | undefined): Writer {
    const writer = this.#writers.get(buffer.toString('latin1', 2, SINGLE_OBJECT_HEADER_BYTES));
    if (!writer)
      throw new ContractError(
        'UNKNOWN_FINGERPRINT',
        `no known schema has fingerprint ${buffer.subarray(2, 10).toString('hex')}`,
      );
    if (expectedSchemaName !== undefined && writer.name !== expectedSchemaName) {
      throw new ContractError(
        'INCOMPATIBLE_SCHEMA',
        `payload is a ${writer.name}, expected a ${expectedSchemaName}`,
        { schemaName: writer.name },
      );
    }
    if (writer.incompatible) throw writer.incompatible;
    return writer;
  }

  #reader(name: string): Reader {
    const reader = typeof name === 'string' ? this.#readers.get(name) : undefined;
    if (!reader)
      throw new ContractError(
        'INVALID_VALUE',
        `unknown record schema ${JSON.stringify(String(name)).slice(0, 120)}`,
      );
    return reader;
  }
}
