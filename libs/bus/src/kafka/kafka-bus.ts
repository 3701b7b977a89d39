// The Kafka adapter. kafkajs stays in this folder only (the rest of the code sees the EventBus port), and only the
// KafkaJS API that @confluentinc/kafka-javascript's KafkaJS-compatible mode also offers is used, so that client can
// replace it by passing its `Kafka` class as `options.kafka`.
import type { ConnectionOptions } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer, SASLOptions } from 'kafkajs';
import { deadLetterPublisher, jsonDeadLetterEncoder } from '../dead-letter.js';
import { deliver, type DeliveryContext } from '../delivery.js';
import { PartitionChooser } from '../partitioner.js';
import {
  BusError,
  type BusHealth,
  type BusObserver,
  type BusRecord,
  type DeadLetterEncoder,
  type DeadLetterInfo,
  type EventBus,
  type Headers,
  type OutgoingRecord,
  type PartitionLag,
  type ProcessedEvents,
  type PublishedRecord,
  type SubscribeOptions,
  type Subscription,
  type TopicSpec,
} from '../port.js';
import { ProcessedEventStore } from '../processed-events.js';
import {
  assertTopicName,
  assertTopicSpec,
  normaliseRecords,
  resolveSubscribeOptions,
  type ResolvedSubscribeOptions,
} from '../validation.js';

/** SASL credentials (never logged: kafkajs logs are off below ERROR and errors carry no config). */
export interface KafkaSasl {
  mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
  username: string;
  password: string;
}

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  ssl?: boolean | ConnectionOptions;
  sasl?: KafkaSasl;
  /** An already built client (e.g. @confluentinc/kafka-javascript's KafkaJS-compatible `Kafka`). */
  kafka?: Kafka;
  /** Partitions for a topic created on first publish when it is not in the catalog (default 3). */
  defaultPartitions?: number;
  /** Replication factor of topics created here (default: the broker's default). */
  replicationFactor?: number;
  autoCreateTopics?: boolean;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** SQLite file of the processed-events store used by `dedupe: true`. */
  dedupeStorePath?: string;
  deadLetterEncoder?: DeadLetterEncoder;
  observer?: BusObserver;
  /** kafkajs log level (default ERROR); its logs never include record values. */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
  /** How long subscribe() waits for the group join (default 60 s). */
  joinTimeoutMs?: number;
}

const { Kafka: KafkaClient, logLevel } = kafkajs;
const LOG_LEVELS = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

export class KafkaBus implements EventBus {
  readonly observer: BusObserver;
  private readonly kafka: Kafka;
  private readonly options: KafkaBusOptions;
  /** @internal Publishes a dead letter on this bus (the delivery core calls it). */
  readonly deadLetter: (info: DeadLetterInfo) => Promise<void>;
  private producer: Producer | null = null;
  private producerReady: Promise<Producer> | null = null;
  private adminReady: Promise<Admin> | null = null;
  private readonly partitionCounts = new Map<string, number>();
  private readonly partitionChooser = new PartitionChooser();
  private readonly subscriptions = new Set<KafkaSubscription>();
  private processedStore: ProcessedEventStore | null = null;
  private closed = false;

  constructor(options: KafkaBusOptions) {
    if (!options || !Array.isArray(options.brokers) || options.brokers.length === 0) {
      throw new BusError('invalid_config', 'the Kafka bus needs at least one broker');
    }
    if (typeof options.clientId !== 'string' || options.clientId.length === 0)
      throw new BusError('invalid_config', 'the Kafka bus needs a clientId');
    this.options = options;
    this.observer = options.observer ?? {};
    this.deadLetter = deadLetterPublisher(this, options.deadLetterEncoder ?? jsonDeadLetterEncoder);
    this.kafka =
      options.kafka ??
      new KafkaClient({
        clientId: options.clientId,
        brokers: options.brokers,
        ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
        ...(options.sasl !== undefined ? { sasl: options.sasl as SASLOptions } : {}),
        logLevel: LOG_LEVELS[options.logLevel ?? 'error'],
      });
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
  }

  private connectProducer(): Promise<Producer> {
    return (this.producerReady ??= (async () => {
      // Idempotent: broker-side dedupe of retried sends, so a retry never writes a record twice or out of order.
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
      });
      await producer.connect();
      this.producer = producer;
      return producer;
    })().catch((error: unknown) => {
      this.producerReady = null;
      throw new BusError('unavailable', `cannot connect the Kafka producer: ${(error as Error).message}`, {
        cause: error,
      });
    }));
  }

  private admin(): Promise<Admin> {
    return (this.adminReady ??= (async () => {
      const admin = this.kafka.admin();
      await admin.connect();
      return admin;
    })().catch((error: unknown) => {
      this.adminReady = null;
      throw new BusError(
        'unavailable',
        `cannot connect the Kafka admin client: ${(error as Error).message}`,
        { cause: error },
      );
    }));
  }

  private async partitionsOf(topic: string): Promise<number> {
    const cached = this.partitionCounts.get(topic);
    if (cached !== undefined) return cached;
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
    if (!existing.has(topic)) {
      if (this.options.autoCreateTopics === false)
        throw new BusError('unknown_topic', `topic ${topic} does not exist`);
      await this.ensureTopics([{ name: topic, partitions: this.options.defaultPartitions ?? 3 }]);
    }
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    const count = metadata.topics[0]?.partitions.length ?? 0;
    if (count === 0) throw new BusError('unknown_topic', `topic ${topic} has no partitions`);
    this.partitionCounts.set(topic, count);
    return count;
  }

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    for (const spec of topics) assertTopicSpec(spec);
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
    const configEntries = (spec: TopicSpec) => [
      ...(spec.retentionMs !== undefined ? [{ name: 'retention.ms', value: String(spec.retentionMs) }] : []),
      ...(spec.cleanupPolicy !== undefined ? [{ name: 'cleanup.policy', value: spec.cleanupPolicy }] : []),
    ];
    const missing = topics.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.name,
          numPartitions: spec.partitions,
          ...((spec.replicationFactor ?? this.options.replicationFactor)
            ? { replicationFactor: spec.replicationFactor ?? this.options.replicationFactor }
            : {}),
          configEntries: configEntries(spec),
        })),
      });
    }
    const present = topics.filter((t) => existing.has(t.name));
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
      const grow = present.filter(
        (spec) =>
          (metadata.topics.find((m) => m.name === spec.name)?.partitions.length ?? 0) < spec.partitions,
      );
      if (grow.length > 0)
        await admin.createPartitions({
          topicPartitions: grow.map((s) => ({ topic: s.name, count: s.partitions })),
        });
      const configured = present.filter((s) => configEntries(s).length > 0);
      if (configured.length > 0) {
        await admin.alterConfigs({
          validateOnly: false,
          resources: configured.map((s) => ({
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: s.name,
            configEntries: configEntries(s),
          })),
        });
      }
    }
    for (const spec of topics) this.partitionCounts.delete(spec.name);
  }

  async publish(records: readonly OutgoingRecord[]): Promise<PublishedRecord[]> {
    this.assertOpen();
    const normalised = normaliseRecords(records);
    if (normalised.length === 0) return [];
    const producer = await this.connectProducer();
    // Partitions chosen here with Kafka's own default rule, so offsets can be reported per record.
    const placed = [];
    for (const r of normalised) {
      const partitions = await this.partitionsOf(r.topic);
      const partition = this.partitionChooser.partitionOf(r.topic, r.key, partitions);
      placed.push({ ...r, partition });
    }
    const byTopic = new Map<string, typeof placed>();
    for (const r of placed) {
      const list = byTopic.get(r.topic);
      if (list) list.push(r);
      else byTopic.set(r.topic, [r]);
    }
    let metadata;
    try {
      metadata = await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, rs]) => ({
          topic,
          messages: rs.map((r) => ({
            key: r.key,
            value: r.value,
            headers: r.headers,
            partition: r.partition,
          })),
        })),
      });
    } catch (error) {
      throw new BusError('publish_failed', `Kafka publish failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const base = new Map(metadata.map((m) => [`${m.topicName}\u0000${m.partition}`, m.baseOffset]));
    const seen = new Map<string, number>();
    const out = placed.map((r) => {
      const k = `${r.topic}\u0000${r.partition}`;
      const index = seen.get(k) ?? 0;
      seen.set(k, index + 1);
      const b = base.get(k);
      return {
        topic: r.topic,
        partition: r.partition,
        offset: b === undefined ? null : (BigInt(b) + BigInt(index)).toString(),
        eventId: r.eventId,
      };
    });
    for (const [topic, rs] of byTopic) this.observer.published?.(topic, rs.length);
    return out;
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const resolved = resolveSubscribeOptions(options);
    let dedupe: ProcessedEvents | null = null;
    if (resolved.dedupe === true) {
      if (!this.options.dedupeStorePath)
        throw new BusError('invalid_subscription', 'dedupe: true on the Kafka bus needs dedupeStorePath');
      dedupe = this.processedStore ??= new ProcessedEventStore(this.options.dedupeStorePath);
    } else if (resolved.dedupe) dedupe = resolved.dedupe;
    for (const topic of resolved.topics) await this.partitionsOf(topic); // creates catalog-less topics like publish does
    const sub = new KafkaSubscription(this, this.kafka, resolved, dedupe, this.options);
    this.subscriptions.add(sub);
    try {
      await sub.start();
    } catch (error) {
      this.subscriptions.delete(sub);
      await sub.close().catch(() => undefined);
      throw new BusError(
        'unavailable',
        `cannot start the Kafka consumer of group ${resolved.group}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return sub;
  }

  /** @internal */
  forget(sub: KafkaSubscription): void {
    this.subscriptions.delete(sub);
  }

  async health(): Promise<BusHealth> {
    if (this.closed) return { ready: false, detail: 'closed' };
    try {
      const admin = await this.admin();
      const cluster = await Promise.race([
        admin.describeCluster(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 5_000).unref()),
      ]);
      const crashed = [...this.subscriptions].filter((s) => s.lastError !== null);
      if (crashed.length > 0)
        return { ready: false, detail: crashed.map((s) => `group ${s.group}: ${s.lastError}`).join('; ') };
      return {
        ready: true,
        detail: `kafka, ${cluster.brokers.length} broker(s), ${this.subscriptions.size} subscription(s)`,
      };
    } catch (error) {
      return { ready: false, detail: `kafka unreachable: ${(error as Error).message}` };
    }
  }

  async consumerLag(group: string, topics: readonly string[]): Promise<PartitionLag[]> {
    this.assertOpen();
    topics.forEach((t) => assertTopicName(t));
    const admin = await this.admin();
    const committed = await admin.fetchOffsets({ groupId: group, topics: [...topics] });
    const lags: PartitionLag[] = [];
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      for (const end of ends) {
        const c = mine.find((p) => p.partition === end.partition)?.offset ?? '-1';
        const from = c === '-1' ? BigInt(end.low) : BigInt(c);
        const lag = BigInt(end.high) - from;
        lags.push({ topic, partition: end.partition, lag: Number(lag > 0n ? lag : 0n) });
      }
    }
    return lags;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.closed = true;
    const admin = this.adminReady ? await this.adminReady.catch(() => null) : null;
    await Promise.allSettled([this.producer?.disconnect(), admin?.disconnect()]);
    this.processedStore?.close();
  }
}

function toBusRecord(topic: string, partition: number, m: KafkaMessage): BusRecord {
  const headers: Headers = {};
  for (const [name, raw] of Object.entries(m.headers ?? {})) {
    const v = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (v !== undefined) headers[name] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key === null ? null : m.key.toString('utf8'),
    value: m.value ?? Buffer.alloc(0),
    headers,
    // A record written by another producer may lack an event id; topic/partition/offset identifies it then.
    eventId: headers['event-id'] ?? `${topic}/${partition}/${m.offset}`,
    timestamp: Number(m.timestamp),
    attempt: 1,
  };
}

/** One kafkajs consumer per subscription: manual commits after success, pause/resume, graceful disconnect. */
class KafkaSubscription implements Subscription {
  readonly group: string;
  readonly topics: readonly string[];
  lastError: string | null = null;
  private readonly consumer: Consumer;
  private readonly bus: KafkaBus;
  private readonly options: ResolvedSubscribeOptions;
  private readonly joinTimeoutMs: number;
  private readonly delivery: Omit<DeliveryContext, 'shouldStop' | 'sleep'>;
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private readonly sleepers = new Set<() => void>();

  constructor(
    bus: KafkaBus,
    kafka: Kafka,
    options: ResolvedSubscribeOptions,
    dedupe: ProcessedEvents | null,
    config: KafkaBusOptions,
  ) {
    this.bus = bus;
    this.options = options;
    this.group = options.group;
    this.topics = [...new Set(options.topics)];
    this.joinTimeoutMs = config.joinTimeoutMs ?? 60_000;
    this.consumer = kafka.consumer({
      groupId: options.group,
      sessionTimeout: config.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: config.heartbeatIntervalMs ?? 3_000,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
    });
    this.delivery = { options, dedupe, observer: bus.observer, deadLetter: (info) => bus.deadLetter(info) };
  }

  get paused(): boolean {
    return this.isPaused;
  }

  async start(): Promise<void> {
    this.consumer.on(this.consumer.events.CRASH, (event) => {
      this.lastError = `consumer crashed: ${event.payload.error.message}`;
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
      this.lastError = null;
    });
    let timer: NodeJS.Timeout | undefined;
    const joined = new Promise<void>((resolve, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no group join within ${this.joinTimeoutMs} ms`)),
        this.joinTimeoutMs,
      );
      this.consumer.on(this.consumer.events.GROUP_JOIN, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Awaited below; when connect/subscribe/run fail first, the abandoned wait must not reject unobserved later.
    joined.catch(() => undefined);
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [...this.topics], fromBeginning: this.options.fromBeginning });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: (payload) => this.eachBatch(payload),
      });
      await joined;
    } finally {
      clearTimeout(timer);
    }
  }

  private async eachBatch({
    batch,
    heartbeat,
    isRunning,
    isStale,
    resolveOffset,
  }: EachBatchPayload): Promise<void> {
    const all = batch.messages.map((m) => toBusRecord(batch.topic, batch.partition, m));
    const shouldStop = () => this.closing || this.isPaused || !isRunning() || isStale();
    const sleep = async (ms: number) => {
      // Keep the membership alive through long backoffs.
      const until = Date.now() + ms;
      while (!shouldStop() && Date.now() < until) {
        await this.sleep(Math.min(1_000, until - Date.now()));
        await heartbeat().catch(() => undefined);
      }
    };
    let next = 0; // index of the first record not done
    while (next < all.length && !shouldStop()) {
      const chunk = all.slice(next, next + this.options.maxBatchSize);
      const done = await deliver({ ...this.delivery, shouldStop, sleep }, chunk);
      if (done > 0) {
        const last = chunk[done - 1]!.offset;
        resolveOffset(last);
        await this.consumer.commitOffsets([
          { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
        ]);
      }
      next += done;
      if (done < chunk.length) break;
      await heartbeat();
    }
    // Stopped early by pause, or before a record whose dead letter could not be written: seek back so prefetched
    // batches are dropped and the consumer refetches from the first unhandled record (on resume, or at once).
    // (On close or rebalance the next owner starts at the committed offset.)
    if (next < all.length && !this.closing && isRunning() && !isStale()) {
      this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: all[next]!.offset });
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.sleepers.add(done);
    });
  }

  pause(): void {
    this.isPaused = true;
    this.consumer.pause(this.topics.map((topic) => ({ topic })));
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.consumer.resume(this.topics.map((topic) => ({ topic })));
  }

  close(): Promise<void> {
    return (this.closePromise ??= (async () => {
      this.closing = true;
      for (const s of [...this.sleepers]) s();
      // disconnect() stops fetching, waits for the running batch (which stops between records and commits), leaves.
      await this.consumer.disconnect().catch(() => undefined);
      this.bus.forget(this);
    })());
  }
}
