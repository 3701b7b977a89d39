// Kafka record values in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary.
import {
  assertValid,
  decodeBody,
  encodeWithHeader,
  parseSchema,
  resolverFor,
  toBuffer,
  type AvroType,
} from './avro.js';
import { ContractError } from './errors.js';
import type { SchemaRegistry } from './registry/port.js';
import type { SchemaName } from './generated/types.js';
import { schemaText, schemaType } from './schemas.js';
import {
  KAFKA_TOPICS,
  kafkaTopic,
  valueSubject,
  type KafkaTopicName,
  type KafkaTopicValue,
} from './topics.js';

export const WIRE_MAGIC = 0;
export const WIRE_HEADER_BYTES = 5;

export interface TopicCodecOptions {
  /**
   * Register the topic's current schema under `<topic>-value` on first encode (default true). With false the subject
   * must already hold exactly this schema (as when a CI step registers schemas and producers may not).
   */
  autoRegister?: boolean;
}

export interface DecodedAny {
  schemaId: number;
  /** `<topic>-value` of the catalog topic whose schema has the writer's name, when there is one. */
  subject?: string;
  value: unknown;
}

type AvroResolver = ReturnType<AvroType['createResolver']>;

interface Writer {
  type: AvroType;
  name: string | undefined;
  /** Resolver to each topic's reader type (null: same schema, no resolver needed). */
  resolvers: Map<string, AvroResolver | null>;
  /** The topic this writer's data was last decoded for, with its reader and resolver: a busy topic skips the
   * catalog, reader and resolver look-ups. */
  last?: { topic: string; reader: AvroType; resolver: AvroResolver | undefined };
}

/** Reads a wire-format header; TRUNCATED / BAD_MAGIC / MALFORMED on bad input. */
export function readWireHeader(bytes: Uint8Array): { schemaId: number; buffer: Buffer } {
  if (!(bytes instanceof Uint8Array)) throw new ContractError('MALFORMED', 'record value must be bytes');
  const buffer = toBuffer(bytes);
  if (buffer.length < WIRE_HEADER_BYTES) {
    throw new ContractError(
      'TRUNCATED',
      `record value has ${buffer.length} byte(s), the wire-format header needs ${WIRE_HEADER_BYTES}`,
    );
  }
  if (buffer[0] !== WIRE_MAGIC) {
    throw new ContractError(
      'BAD_MAGIC',
      `record value starts with 0x${buffer[0]!.toString(16).padStart(2, '0')}, not the wire-format magic byte 0x00`,
    );
  }
  return { schemaId: buffer.readUInt32BE(1), buffer };
}

/**
 * Encodes and decodes the values of catalog topics. Validates before encoding (INVALID_VALUE names the field
 * paths), registers/looks up schemas through a SchemaRegistry port, and decodes data written with any registered
 * schema a reader with the current schema can read (older writers still decode). Ids, writer types and resolvers
 * are cached.
 */
export class TopicCodec {
  readonly #registry: SchemaRegistry;
  readonly #autoRegister: boolean;
  readonly #ids = new Map<string, Promise<number>>();
  readonly #writers = new Map<number, Promise<Writer>>();
  readonly #ready = new Map<number, Writer>();
  /** Wire-format header per topic, once its schema id is known. */
  readonly #headers = new Map<string, Buffer>();

  constructor(registry: SchemaRegistry, options: TopicCodecOptions = {}) {
    this.#registry = registry;
    this.#autoRegister = options.autoRegister ?? true;
  }

  /** The schema id values of `topic` are written with (registers the current schema on first use). */
  schemaId(topic: KafkaTopicName): Promise<number> {
    const spec = kafkaTopic(topic);
    let id = this.#ids.get(spec.name);
    if (!id) {
      id = this.#resolveId(spec.name, spec.schema);
      this.#ids.set(spec.name, id);
      id.catch(() => this.#ids.delete(spec.name)); // a failed registration is retried on the next call
    }
    return id;
  }

  async #resolveId(topic: string, schema: Parameters<typeof schemaText>[0]): Promise<number> {
    const subject = valueSubject(topic);
    const text = schemaText(schema);
    if (this.#autoRegister) return this.#registry.register(subject, text);
    const latest = await this.#registry.getLatest(subject);
    if (!latest || JSON.stringify(JSON.parse(latest.schema)) !== text) {
      throw new ContractError(
        'UNKNOWN_SCHEMA_ID',
        `subject ${subject} does not hold the current schema of ${topic} (autoRegister is off)`,
        {
          topic,
        },
      );
    }
    return latest.id;
  }

  /** Throws INVALID_VALUE (with field paths) unless `value` is a valid value of `topic`. */
  validate<T extends KafkaTopicName>(topic: T, value: KafkaTopicValue<T>): void {
    const spec = kafkaTopic(topic);
    assertValid(schemaType(spec.schema), value, spec.name, { topic: spec.name });
  }

  encode<T extends KafkaTopicName>(topic: T, value: KafkaTopicValue<T>): Promise<Buffer> {
    try {
      const spec = kafkaTopic(topic);
      const type = schemaType(spec.schema);
      assertValid(type, value, spec.name, { topic: spec.name });
      // Fast path without an await once the topic's schema id is known.
      const header = this.#headers.get(spec.name);
      if (header) return Promise.resolve(encodeWithHeader(type, header, value));
      return this.schemaId(topic).then((id) => {
        const fresh = Buffer.alloc(WIRE_HEADER_BYTES);
        fresh.writeUInt8(WIRE_MAGIC, 0);
        fresh.writeUInt32BE(id, 1);
        this.#headers.set(spec.name, fresh);
        return encodeWithHeader(type, fresh, value);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  decode<T extends KafkaTopicName>(topic: T, bytes: Uint8Array): Promise<KafkaTopicValue<T>> {
    // Fast path without an await once the writer schema of the id is cached (the common case on a busy topic).
    try {
      if (!(bytes instanceof Uint8Array)) throw new ContractError('MALFORMED', 'record value must be bytes');
      const buffer = toBuffer(bytes);
      const writer = buffer.length >= WIRE_HEADER_BYTES ? this.#ready.get(buffer.readUInt32BE(1)) : undefined;
      const last = writer?.last;
      if (last !== undefined && last.topic === topic && buffer[0] === WIRE_MAGIC) {
        return Promise.resolve(
          decodeBody(buffer, WIRE_HEADER_BYTES, last.reader, last.resolver) as KafkaTopicValue<T>,
        );
      }
      const spec = kafkaTopic(topic);
      const { schemaId } = readWireHeader(buffer);
      if (writer)
        return Promise.resolve(
          this.#decodeWith(spec.name, spec.schema, schemaId, writer, buffer) as KafkaTopicValue<T>,
        );
      return this.#writer(schemaId).then((w): unknown =>
        this.#decodeWith(spec.name, spec.schema, schemaId, w, buffer),
      ) as Promise<KafkaTopicValue<T>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #decodeWith(topic: string, schema: SchemaName, _schemaId: number, writer: Writer, buffer: Buffer): unknown {
    const reader = schemaType(schema);
    const resolver = this.#resolver(topic, reader, writer);
    writer.last = { topic, reader, resolver };
    return decodeBody(buffer, WIRE_HEADER_BYTES, reader, resolver);
  }

  /** Decodes with the writer schema alone (no topic needed): for tools, dead-letter inspection and replays. */
  async decodeAny(bytes: Uint8Array): Promise<DecodedAny> {
    const { schemaId, buffer } = readWireHeader(bytes);
    const writer = await this.#writer(schemaId);
    const value = decodeBody(buffer, WIRE_HEADER_BYTES, writer.type);
    const topic = Object.values(KAFKA_TOPICS).find((t) => t.schema === writer.name);
    return topic ? { schemaId, subject: valueSubject(topic.name), value } : { schemaId, value };
  }

  #writer(id: number): Promise<Writer> {
    let writer = this.#writers.get(id);
    if (!writer) {
      writer = this.#registry.getById(id).then((text) => {
        const type = parseSchema(text);
        const ready: Writer = { type, name: type.name, resolvers: new Map() };
        this.#ready.set(id, ready);
        return ready;
      });
      this.#writers.set(id, writer);
      // Unknown ids are not cached: the id may be registered by another producer a moment later.
      writer.catch(() => this.#writers.delete(id));
    }
    return writer;
  }

  #resolver(topic: string, reader: AvroType, writer: Writer): AvroResolver | undefined {
    const known = writer.resolvers.get(topic);
    if (known !== undefined) return known ?? undefined;
    const resolver = resolverFor(reader, writer.type); // INCOMPATIBLE_SCHEMA is not cached: rare, cheap to recompute
    writer.resolvers.set(topic, resolver ?? null);
    return resolver;
  }
}
