import { randomUUID } from 'node:crypto';
import {
  BusError,
  HEADER_EVENT_ID,
  HEADER_TENANT,
  HEADER_TRACE_ID,
  type Backoff,
  type Headers,
  type OutgoingRecord,
  type SubscribeOptions,
  type TopicSpec,
} from './port.js';

// Kafka's own rule for topic names (legal characters, at most 249).
const TOPIC_NAME = /^[a-zA-Z0-9._-]{1,249}$/;
const MAX_ID_LENGTH = 256;

export function assertTopicName(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || !TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
    throw new BusError('invalid_topic', `invalid topic name ${JSON.stringify(String(topic)).slice(0, 80)}`);
  }
}

/** A record checked and normalised: value a Buffer, headers complete (event-id, tenant, trace-id). */
export interface NormalisedRecord {
  topic: string;
  key: string | null;
  value: Buffer;
  headers: Headers;
  eventId: string;
}

/** The records of one publish call, checked and normalised (what both adapters take in; a bad one throws BusError). */
export function normaliseRecords(records: readonly OutgoingRecord[]): NormalisedRecord[] {
  if (!Array.isArray(records)) throw new BusError('invalid_record', 'publish takes an array of records');
  return records.map((r, i) => normaliseRecord(r, i));
}

function normaliseRecord(record: OutgoingRecord, index: number): NormalisedRecord {
  if (record === null || typeof record !== 'object')
    throw new BusError('invalid_record', `record ${index} is not an object`);
  assertTopicName(record.topic);
  const { key } = record;
  if (key !== null && (typeof key !== 'string' || key.length > 4096)) {
    throw new BusError('invalid_key', `record ${index}: key must be a string (at most 4096 chars) or null`);
  }
  if (!(record.value instanceof Uint8Array)) {
    throw new BusError('invalid_value', `record ${index}: value must be a Buffer or Uint8Array`);
  }
  const value = Buffer.isBuffer(record.value)
    ? record.value
    : Buffer.from(record.value.buffer, record.value.byteOffset, record.value.byteLength);
  const headers: Headers = {};
  if (record.headers !== undefined) {
    if (record.headers === null || typeof record.headers !== 'object') {
      throw new BusError('invalid_headers', `record ${index}: headers must be an object of strings`);
    }
    for (const [name, v] of Object.entries(record.headers)) {
      if (name.length === 0 || typeof v !== 'string') {
        throw new BusError(
          'invalid_headers',
          `record ${index}: header ${JSON.stringify(name)} must be a non-empty name with a string value`,
        );
      }
      headers[name] = v;
    }
  }
  const eventId = record.eventId ?? headers[HEADER_EVENT_ID] ?? randomUUID();
  assertId(eventId, 'eventId', index);
  headers[HEADER_EVENT_ID] = eventId;
  if (record.tenant !== undefined) {
    assertId(record.tenant, 'tenant', index);
    headers[HEADER_TENANT] = record.tenant;
  }
  if (record.traceId !== undefined) {
    assertId(record.traceId, 'traceId', index);
    headers[HEADER_TRACE_ID] = record.traceId;
  }
  return { topic: record.topic, key, value, headers, eventId };
}

function assertId(value: unknown, what: string, index: number): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) {
    throw new BusError(
      'invalid_record',
      `record ${index}: ${what} must be a non-empty string of at most ${MAX_ID_LENGTH} chars`,
    );
  }
}

export function assertTopicSpec(spec: TopicSpec): void {
  assertTopicName(spec?.name);
  if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 10_000) {
    throw new BusError('invalid_topic', `topic ${spec.name}: partitions must be an integer in 1..10000`);
  }
  if (
    spec.retentionMs !== undefined &&
    !(Number.isInteger(spec.retentionMs) && (spec.retentionMs > 0 || spec.retentionMs === -1))
  ) {
    throw new BusError(
      'invalid_topic',
      `topic ${spec.name}: retentionMs must be a positive integer or -1 (forever)`,
    );
  }
  if (
    spec.cleanupPolicy !== undefined &&
    !['delete', 'compact', 'compact,delete'].includes(spec.cleanupPolicy)
  ) {
    throw new BusError(
      'invalid_topic',
      `topic ${spec.name}: unknown cleanupPolicy ${String(spec.cleanupPolicy)}`,
    );
  }
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 100, maxMs: 10_000, factor: 2 };

/** Subscription options checked, with defaults. */
export interface ResolvedSubscribeOptions extends SubscribeOptions {
  maxAttempts: number;
  backoff: Backoff;
  fromBeginning: boolean;
  maxBatchSize: number;
  commitEvery: number;
  commitIntervalMs: number;
  maxCrashes: number;
  maxPartitionsInFlight: number;
}

function positiveInteger(options: SubscribeOptions, name: keyof SubscribeOptions, fallback: number): number {
  const value = options[name] ?? fallback;
  if (!Number.isInteger(value) || (value as number) < 1)
    throw new BusError('invalid_subscription', `${name} must be an integer >= 1`);
  return value as number;
}

export function resolveSubscribeOptions(options: SubscribeOptions): ResolvedSubscribeOptions {
  if (options === null || typeof options !== 'object')
    throw new BusError('invalid_subscription', 'subscribe options are required');
  if (typeof options.group !== 'string' || options.group.length === 0 || options.group.length > 249) {
    throw new BusError('invalid_subscription', 'group must be a non-empty string');
  }
  if (!Array.isArray(options.topics) || options.topics.length === 0) {
    throw new BusError('invalid_subscription', 'topics must be a non-empty array');
  }
  for (const t of options.topics) assertTopicName(t);
  if ((options.handler === undefined) === (options.batchHandler === undefined)) {
    throw new BusError('invalid_subscription', 'give exactly one of handler or batchHandler');
  }
  const maxAttempts = positiveInteger(options, 'maxAttempts', 5);
  const backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
  if (!(backoff.initialMs >= 0 && backoff.maxMs >= backoff.initialMs && backoff.factor >= 1)) {
    throw new BusError('invalid_subscription', 'backoff needs 0 <= initialMs <= maxMs and factor >= 1');
  }
  return {
    ...options,
    maxAttempts,
    backoff,
    fromBeginning: options.fromBeginning ?? false,
    maxBatchSize: positiveInteger(options, 'maxBatchSize', 500),
    commitEvery: positiveInteger(options, 'commitEvery', 50),
    commitIntervalMs: positiveInteger(options, 'commitIntervalMs', 1_000),
    maxCrashes: positiveInteger(options, 'maxCrashes', 3),
    maxPartitionsInFlight: positiveInteger(options, 'maxPartitionsInFlight', 8),
  };
}

/** Delay before retry number `attempt` (1 = after the first failure). */
export function backoffDelay(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * backoff.factor ** (attempt - 1));
}

/**
 * The refusal of a partition count that differs from an existing topic's (both adapters): counts are fixed per topic
 * version, since more partitions move existing keys to other partitions and break per-key order.
 */
export function partitionCountMismatch(
  mismatched: ReadonlyArray<{ spec: TopicSpec; actual: number }>,
): BusError {
  return new BusError(
    'partition_count_mismatch',
    mismatched
      .map(
        ({ spec, actual }) =>
          `topic ${spec.name} has ${actual} partition(s), the catalog says ${spec.partitions}: partition counts are fixed per topic version (changing one moves keys to other partitions and breaks per-key order); publish to a new version of the topic (…v2) instead`,
      )
      .join('; '),
  );
}
