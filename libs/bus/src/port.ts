// The EventBus port: bytes in, bytes out. Adapters (embedded SQLite log, Kafka) implement it; everything above
// (typed codecs, NestJS module, services) talks to this interface only. Erasable TypeScript only: the crash test
// runs parts of this library in a child process under Node's own type stripping.

/** Headers every record carries (plus free-form ones). Values are strings. */
export const HEADER_TENANT = 'tenant';
export const HEADER_TRACE_ID = 'trace-id';
export const HEADER_EVENT_ID = 'event-id';

/** The topic every adapter dead-letters to (see libs/contracts' catalog). */
// The catalog's name (KAFKA_TOPICS.deadLetter in libs/contracts), spelled out because this file must run under plain
// type stripping without the contracts package; a test keeps the two equal.
export const DEAD_LETTER_TOPIC = 'edgefl.bus.deadletter.v1';

export type Headers = Record<string, string>;

/** One record to publish. */
export interface OutgoingRecord {
  topic: string;
  /** The entity id (device id, round id, model id): records with the same key keep their order. */
  key: string | null;
  value: Buffer | Uint8Array;
  headers?: Headers;
  /** Unique id of the event; a uuid is generated when absent. Also written to the `event-id` header. */
  eventId?: string;
  /** Tenant, written to the `tenant` header. */
  tenant?: string;
  /** Trace id, written to the `trace-id` header. */
  traceId?: string;
}

/** Where a published record landed. `offset` is null when the adapter cannot tell. */
export interface PublishedRecord {
  topic: string;
  partition: number;
  offset: string | null;
  eventId: string;
}

/** A record delivered to a handler. */
export interface BusRecord {
  topic: string;
  partition: number;
  /** Offset within the partition, as a decimal string (Kafka offsets are 64-bit). */
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Headers;
  eventId: string;
  /** Publish time, ms since the epoch. */
  timestamp: number;
  /** 1 on the first delivery attempt in this consumer, 2 on the first retry, ... */
  attempt: number;
}

export type RecordHandler = (record: BusRecord) => Promise<void> | void;
/** Receives consecutive records of one partition; a throw retries the whole batch. */
export type BatchHandler = (records: BusRecord[]) => Promise<void> | void;

export interface Backoff {
  initialMs: number;
  maxMs: number;
  factor: number;
}

/** Remembers processed event ids per consumer group (see ProcessedEventStore). */
export interface ProcessedEvents {
  /** Event ids among `eventIds` already processed by `group`. */
  seen(group: string, eventIds: readonly string[]): Set<string>;
  /** Records `eventIds` as processed by `group`. */
  markProcessed(group: string, eventIds: readonly string[]): void;
}

export interface SubscribeOptions {
  /** Consumer group: members of one group split the partitions; each group sees every record. */
  group: string;
  topics: readonly string[];
  handler?: RecordHandler;
  batchHandler?: BatchHandler;
  /** Attempts before a record is dead-lettered (default 5). */
  maxAttempts?: number;
  backoff?: Partial<Backoff>;
  /** Without a committed offset, start at the oldest record (true) or at the end (false, default). */
  fromBeginning?: boolean;
  /**
   * Skip records whose event id this group already processed. `true` uses the adapter's own store (the bus file for
   * the embedded adapter; `dedupeStorePath` for Kafka); or pass a store.
   */
  dedupe?: boolean | ProcessedEvents;
  /** Records handed to a batch handler / fetched per partition at once (default 500). */
  maxBatchSize?: number;
  /**
   * Progress (offset and processed ids) is committed after this many records within a batch (default 50), so a
   * crash replays at most this many records of a partition.
   */
  commitEvery?: number;
  /** …or once this long has passed since the last progress commit (default 1,000 ms), whichever comes first. */
  commitIntervalMs?: number;
  /**
   * A record whose delivery was started this many times by processes that died before finishing it (SIGKILL, OOM)
   * is dead-lettered without running the handler again (default 3; reason `crashed its consumer N times`).
   */
  maxCrashes?: number;
  /** Partitions of this subscription handled at once by one member (default 8); the others wait their turn. */
  maxPartitionsInFlight?: number;
}

export interface Subscription {
  readonly group: string;
  readonly topics: readonly string[];
  /** Stop fetching (in-flight handlers finish); nothing is lost. */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** Stop fetching, finish in-flight handlers, commit, leave the group. Idempotent. */
  close(): Promise<void>;
}

/** A topic as the catalog describes it (libs/contracts' KAFKA_TOPICS entries fit this shape). */
export interface TopicSpec {
  name: string;
  partitions: number;
  retentionMs?: number;
  cleanupPolicy?: 'delete' | 'compact' | 'compact,delete';
  replicationFactor?: number;
}

export interface BusHealth {
  ready: boolean;
  detail: string;
}

export interface PartitionLag {
  topic: string;
  partition: number;
  /** Records after the group's committed offset. */
  lag: number;
}

/** Why a record was dead-lettered, as adapters hand it to the dead-letter sink. */
export interface DeadLetterInfo {
  eventId: string;
  tenant: string | null;
  originalTopic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer;
  headers: Headers;
  reason: string;
  /** Machine-readable cause: `handler_failed`, a ContractError code such as `decode_failed`, ... */
  errorCode: string;
  attempts: number;
  consumerGroup: string;
  failedAt: number;
}

/** Turns a dead letter into the bytes published on DEAD_LETTER_TOPIC. */
export type DeadLetterEncoder = (deadLetter: DeadLetterInfo) => Promise<Buffer> | Buffer;

/** Observes what the bus does (metrics hook). All methods optional. */
export interface BusObserver {
  published?(topic: string, count: number): void;
  consumed?(
    topic: string,
    group: string,
    outcome: 'ok' | 'retry' | 'dead_letter' | 'duplicate',
    count: number,
  ): void;
  deadLettered?(topic: string, group: string, reasonCode: string): void;
  handlerDuration?(topic: string, group: string, seconds: number): void;
  /** The embedded bus file was locked by another process at one try for its write lock (the try is retried). */
  lockWait?(): void;
  /** Kafka: partitions of a topic the group consumes here that no member of the group owns (set at each check). */
  unownedPartitions?(group: string, topic: string, count: number): void;
  /** Kafka: a group's consumer crashed (it is restarted: by kafkajs after a retriable error, else by the bus). */
  consumerRestarted?(group: string): void;
  /** Kafka: an existing topic's setting differs from the catalog's (reported, never overwritten). */
  topicDrift?(topic: string, setting: string): void;
}

export interface EventBus {
  publish(records: readonly OutgoingRecord[]): Promise<PublishedRecord[]>;
  subscribe(options: SubscribeOptions): Promise<Subscription>;
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  health(): Promise<BusHealth>;
  /** Per-partition lag of a group on some topics. */
  consumerLag(group: string, topics: readonly string[]): Promise<PartitionLag[]>;
  /** Orderly drain: stop fetching, finish in-flight handlers, commit offsets, close. Idempotent. */
  close(): Promise<void>;
}

/** A typed, clear error for bad input or a bus failure. Never carries record values or secrets. */
export class BusError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
  }
}
