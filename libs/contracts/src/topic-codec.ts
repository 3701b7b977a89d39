// Kafka record values in the Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary.
import { assertValid, decodeBody, parseSchema, resolverFor, toBuffer, type AvroType } from './avro.js';
import { ContractError } from './errors.js';
import type { SchemaRegistry } from './registry/port.js';
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
  readonly #resolvers = new Map<string, AvroResolver | null>();
  readonly #headers = new Map<number, Buffer>();

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

  async encode<T extends KafkaTopicName>(topic: T, value: KafkaTopicValue<T>): Promise<Buffer> {
    const spec = kafkaTopic(topic);
    const type = schemaType(spec.schema);
    assertValid(type, value, spec.name, { topic: spec.name });
    const id = await this.schemaId(topic);
    let header = this.#headers.get(id);
    if (!header) {
      header = Buffer.alloc(WIRE_HEADER_BYTES);
      header.writeUInt8(WIRE_MAGIC, 0);
      header.writeUInt32BE(id, 1);
      this.#headers.set(id, header);
    }
    return Buffer.concat([header, type.toBuffer(value)]);
  }

  async decode<T extends KafkaTopicName>(topic: T, bytes: Uint8Array): Promise<KafkaTopicValue<T>> {
    const spec = kafkaTopic(topic);
    const { schemaId, buffer } = readWireHeader(bytes);
    const writer = await this.#writer(schemaId);
    const reader = schemaType(spec.schema);
    const resolver = this.#resolver(spec.name, reader, schemaId, writer.type);
    return decodeBody(buffer, WIRE_HEADER_BYTES, writer.type, reader, resolver) as KafkaTopicValue<T>;
  }

  /** Decodes with the writer schema alone (no topic needed): for tools, dead-letter inspection and replays. */
  async decodeAny(bytes: Uint8Array): Promise<DecodedAny> {
    const { schemaId, buffer } = readWireHeader(bytes);
    const writer = await this.#writer(schemaId);
    const value = decodeBody(buffer, WIRE_HEADER_BYTES, writer.type, writer.type);
    const topic = Object.values(KAFKA_TOPICS).find((t) => t.schema === writer.name);
    return topic ? { schemaId, subject: valueSubject(topic.name), value } : { schemaId, value };
  }

  #writer(id: number): Promise<Writer> {
    let writer = this.#writers.get(id);
    if (!writer) {
      writer = this.#registry.getById(id).then((text) => {
        const type = parseSchema(text);
        return { type, name: type.name };
      });
      this.#writers.set(id, writer);
      // Unknown ids are not cached: the id may be registered by another producer a moment later.
      writer.catch(() => this.#writers.delete(id));
    }
    return writer;
  }

  #resolver(topic: string, reader: AvroType, id: number, writer: AvroType): AvroResolver | undefined {
    const key = `${topic}\u0000${id}`;
    if (this.#resolvers.has(key)) return this.#resolvers.get(key) ?? undefined;
    const resolver = resolverFor(reader, writer); // INCOMPATIBLE_SCHEMA, not cached: cheap to recompute, rare
    this.#resolvers.set(key, resolver ?? null);
    return resolver;
  }
}
