// The typed layer: values of catalog topics in, values out, encoded by a codec (libs/contracts' TopicCodec, which
// writes the Confluent wire format). A record that fails to decode is dead-lettered at once with the codec's error
// code; a handler that keeps throwing is dead-lettered after maxAttempts (the bytes-level delivery core does both).
import { createHash } from 'node:crypto';
import type { DeadLetter } from '@edgefl/contracts';
import { UnprocessableRecordError } from '../delivery.js';
import {
  DEAD_LETTER_TOPIC,
  type BusRecord,
  type DeadLetterEncoder,
  type DeadLetterInfo,
  type EventBus,
  type Headers,
  type PublishedRecord,
  type SubscribeOptions,
  type Subscription,
} from '../port.js';

/**
 * Encodes and decodes values per topic. `C` maps topic names to value types. libs/contracts' TopicCodec fits:
 * `TypedBus<KafkaTopicValues>` with `{ [T in KafkaTopicName]: KafkaTopicValue<T> }`.
 */
export interface ValueCodec<C> {
  encode<T extends keyof C & string>(topic: T, value: C[T]): Promise<Buffer>;
  decode<T extends keyof C & string>(topic: T, bytes: Uint8Array): Promise<C[T]>;
}

export interface TypedEvent<V> {
  value: V;
  /** Entity id; defaults to keyOf(topic, value). */
  key?: string | null;
  /** Defaults to the value's own `eventId` field when it has one, else a new uuid. */
  eventId?: string;
  /** Defaults to the value's own `tenant` field when it has one. */
  tenant?: string;
  traceId?: string;
  headers?: Headers;
}

/** A delivered record with its decoded value (`raw` keeps the original bytes). */
export type TypedRecord<C, T extends keyof C & string> = Omit<BusRecord, 'value' | 'topic'> & {
  topic: T;
  value: C[T];
  raw: Buffer;
};

export interface TypedSubscribeOptions<C, T extends keyof C & string> extends Omit<
  SubscribeOptions,
  'topics' | 'handler' | 'batchHandler'
> {
  topics: readonly T[];
  handler: (record: TypedRecord<C, T>) => Promise<void> | void;
}

/** A record of a typed batch whose bytes did not decode: its raw record and the codec's error. */
export interface UndecodableRecord {
  record: BusRecord;
  code: string;
  message: string;
}

export interface TypedBatchSubscribeOptions<C, T extends keyof C & string> extends Omit<
  SubscribeOptions,
  'topics' | 'handler' | 'batchHandler'
> {
  topics: readonly T[];
  /** Consecutive records of one partition, decoded; those that did not decode come apart in `undecodable`. */
  handler: (records: TypedRecord<C, T>[], undecodable: UndecodableRecord[]) => Promise<void> | void;
}

export interface TypedBusOptions<C> {
  /** The record key of a value (libs/contracts' kafkaKey uses the catalog's keyField). Default: no key. */
  keyOf?: <T extends keyof C & string>(topic: T, value: C[T]) => string | null;
}

const field = (value: unknown, name: string): string | undefined => {
  if (value && typeof value === 'object' && name in value) {
    const v = (value as Record<string, unknown>)[name];
    if (typeof v === 'string' && v.length > 0) return v;
  }
  return undefined;
};

export class TypedBus<C> {
  readonly bus: EventBus;
  readonly codec: ValueCodec<C>;
  private readonly keyOf: NonNullable<TypedBusOptions<C>['keyOf']> | null;

  constructor(bus: EventBus, codec: ValueCodec<C>, options: TypedBusOptions<C> = {}) {
    this.bus = bus;
    this.codec = codec;
    this.keyOf = options.keyOf ?? null;
  }

  /** Validates and encodes each value (a codec error rejects the whole call before anything is written). */
  async publish<T extends keyof C & string>(
    topic: T,
    events: readonly TypedEvent<C[T]>[],
  ): Promise<PublishedRecord[]> {
    const records = await Promise.all(
      events.map(async (e) => {
        const eventId = e.eventId ?? field(e.value, 'eventId');
        const tenant = e.tenant ?? field(e.value, 'tenant');
        return {
          topic,
          key: e.key !== undefined ? e.key : this.keyOf ? this.keyOf(topic, e.value) : null,
          value: await this.codec.encode(topic, e.value),
          ...(e.headers ? { headers: e.headers } : {}),
          ...(eventId !== undefined ? { eventId } : {}),
          ...(tenant !== undefined ? { tenant } : {}),
          ...(e.traceId !== undefined ? { traceId: e.traceId } : {}),
        };
      }),
    );
    return this.bus.publish(records);
  }

  subscribe<T extends keyof C & string>(options: TypedSubscribeOptions<C, T>): Promise<Subscription> {
    const { handler, topics, ...rest } = options;
    return this.bus.subscribe({
      ...rest,
      topics,
      handler: async (record) => {
        const topic = record.topic as T;
        let value: C[T];
        try {
          value = await this.codec.decode(topic, record.value);
        } catch (error) {
          // No retry can fix bytes that do not decode: dead-letter now, keep consuming.
          const raw = (error as { code?: unknown } | null)?.code;
          const code = typeof raw === 'string' ? raw : 'DECODE_FAILED';
          throw new UnprocessableRecordError(
            code,
            `cannot decode a record of ${record.topic}: ${(error as Error).message}`,
            { cause: error },
          );
        }
        await handler({ ...record, topic, value, raw: record.value });
      },
    });
  }

  /**
   * Batches of one partition decoded (a batch handler's throw retries, then dead-letters, the whole batch, so a
   * record that does not decode is handed to the handler in `undecodable` instead of failing its batch).
   */
  subscribeBatch<T extends keyof C & string>(
    options: TypedBatchSubscribeOptions<C, T>,
  ): Promise<Subscription> {
    const { handler, topics, ...rest } = options;
    return this.bus.subscribe({
      ...rest,
      topics,
      batchHandler: async (records) => {
        const decoded: TypedRecord<C, T>[] = [];
        const undecodable: UndecodableRecord[] = [];
        for (const record of records) {
          const topic = record.topic as T;
          try {
            const value = await this.codec.decode(topic, record.value);
            decoded.push({ ...record, topic, value, raw: record.value });
          } catch (error) {
            const raw = (error as { code?: unknown } | null)?.code;
            undecodable.push({
              record,
              code: typeof raw === 'string' ? raw : 'DECODE_FAILED',
              message: `cannot decode a record of ${record.topic}: ${(error as Error).message}`,
            });
          }
        }
        await handler(decoded, undecodable);
      },
    });
  }
}

/**
 * The value of a dead letter on the catalog's dead-letter topic: libs/contracts' generated `DeadLetter`
 * (io.edgefl.bus.DeadLetter), not a copy of it, so a schema change reaches this code as a type error.
 */
export type DeadLetterValue = DeadLetter;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The dead letter as the Avro DeadLetter record: key as bytes, event id a uuid (derived when the original's is not). */
export function toDeadLetterValue(info: DeadLetterInfo): DeadLetterValue {
  const eventId = UUID.test(info.eventId) ? info.eventId.toLowerCase() : uuidFrom(info.eventId);
  return {
    eventId,
    tenant: info.tenant,
    originalTopic: info.originalTopic,
    partition: info.partition,
    offset: info.offset,
    key: info.key === null ? null : Buffer.from(info.key, 'utf8'),
    value: info.value,
    headers: info.headers,
    reason: info.reason,
    errorCode: info.errorCode,
    attempts: info.attempts,
    consumerGroup: info.consumerGroup,
    failedAt: info.failedAt,
  };
}

/** A deterministic uuid (version 8, RFC 9562 custom) from any string. */
function uuidFrom(text: string): string {
  const b = createHash('sha256').update(text).digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** A dead-letter encoder that writes the catalog's DeadLetter schema with the codec (wire format). */
export function codecDeadLetterEncoder(
  codec: ValueCodec<Record<typeof DEAD_LETTER_TOPIC, DeadLetterValue>>,
): DeadLetterEncoder {
  return (info) => codec.encode(DEAD_LETTER_TOPIC, toDeadLetterValue(info));
}
