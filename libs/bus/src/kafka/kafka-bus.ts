// The Kafka adapter. kafkajs stays in this folder only (the rest of the code sees the EventBus port), and only the
// KafkaJS API that @confluentinc/kafka-javascript's KafkaJS-compatible mode also offers is used, so that client can
// replace it by passing its `Kafka` class as `options.kafka`.
//
// This file is the port and the producer side (publish with Kafka's partitioner, idempotent producer); beside it:
// kafka-topics.ts (admin: topics from the catalog, partition counts, lag), kafka-group-consumer.ts (one kafkajs
// consumer per group, dispatching to the subscriptions) and kafka-subscription.ts (delivery per subscription).
import type { ConnectionOptions } from 'node:tls';
import kafkajs from 'kafkajs';
import type { Kafka, Producer, SASLOptions } from 'kafkajs';
import { deadLetterPublisher, jsonDeadLetterEncoder } from '../dead-letter.js';
import { PartitionChooser } from '../partitioner.js';
import {
  BusError,
  type BusHealth,
  type BusObserver,
  type DeadLetterEncoder,
  type DeadLetterInfo,
  type EventBus,
  type OutgoingRecord,
  type PartitionLag,
  type ProcessedEvents,
  type PublishedRecord,
  type SubscribeOptions,
  type Subscription,
  type TopicSpec,
} from '../port.js';
import { ProcessedEventStore } from '../processed-events.js';
import { assertTopicName, normaliseRecords, resolveSubscribeOptions } from '../validation.js';
import { KafkaGroupConsumer } from './kafka-group-consumer.js';
import { kafkaLogCreator, stderrBusLogger, type BusLogger } from './kafka-logging.js';
import { KafkaSubscription, type KafkaSubscriptionHost } from './kafka-subscription.js';
import { KafkaTopics } from './kafka-topics.js';

/** SASL credentials (never logged: kafkajs never logs them, and errors carry no config). */
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
  /** kafkajs log level (default INFO); its logs never include record values. */
  logLevel?: 'nothing' | 'error' | 'warn' | 'info' | 'debug';
  /** Where kafkajs's and the bus's log lines go (default: warnings and errors as JSON on stderr). */
  logger?: BusLogger;
  /** How long subscribe() waits for the group join (default 60 s). */
  joinTimeoutMs?: number;
  /** How long a member may take to rejoin in a rebalance (default 60 s); partitions unowned longer fail readiness. */
  rebalanceTimeoutMs?: number;
  /** First delay before a crashed consumer is restarted (default 1 s, doubling up to 30 s). */
  restartBackoffMs?: number;
  /** `edgefl` (default): the subscription-aware assigner; `client`: the client's own (see kafka-group-consumer.ts). */
  partitionAssigners?: 'edgefl' | 'client';
}

const { Kafka: KafkaClient, logLevel } = kafkajs;
const LOG_LEVELS = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};

export class KafkaBus implements EventBus, KafkaSubscriptionHost {
  readonly observer: BusObserver;
  private readonly kafka: Kafka;
  private readonly options: KafkaBusOptions;
  /** @internal Publishes a dead letter on this bus (the delivery core calls it). */
  readonly deadLetter: (info: DeadLetterInfo) => Promise<void>;
  private producer: Producer | null = null;
  private producerReady: Promise<Producer> | null = null;
  private readonly topics: KafkaTopics;
  private readonly partitionChooser = new PartitionChooser();
  private readonly subscriptions = new Set<KafkaSubscription>();
  /** One kafkajs consumer per group on this bus (see kafka-group-consumer.ts). */
  private readonly groups = new Map<string, KafkaGroupConsumer>();
  private readonly logger: BusLogger;
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
    this.logger = options.logger ?? stderrBusLogger;
    this.kafka =
      options.kafka ??
      new KafkaClient({
        clientId: options.clientId,
        brokers: options.brokers,
        ...(options.ssl !== undefined ? { ssl: options.ssl } : {}),
        ...(options.sasl !== undefined ? { sasl: options.sasl as SASLOptions } : {}),
        logLevel: LOG_LEVELS[options.logLevel ?? 'info'],
        logCreator: kafkaLogCreator(this.logger),
      });
    this.topics = new KafkaTopics(this.kafka, options, () => this.assertOpen(), this.observer, this.logger);
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

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    await this.topics.ensureTopics(topics);
  }

  /** Deletes topics (not part of the port: a test suite's own topics on a shared broker). */
  async deleteTopics(names: readonly string[]): Promise<void> {
    this.assertOpen();
    names.forEach((t) => assertTopicName(t));
    await this.topics.deleteTopics(names);
  }

  async publish(records: readonly OutgoingRecord[]): Promise<PublishedRecord[]> {
    this.assertOpen();
    const normalised = normaliseRecords(records);
    if (normalised.length === 0) return [];
    const producer = await this.connectProducer();
    // Partitions chosen here with Kafka's own default rule, so offsets can be reported per record.
    const placed = [];
    for (const r of normalised) {
      const partitions = await this.topics.partitionsOf(r.topic);
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
    for (const topic of resolved.topics) await this.topics.partitionsOf(topic); // creates catalog-less topics like publish does
    let group = this.groups.get(resolved.group);
    if (!group) {
      group = new KafkaGroupConsumer(this.kafka, resolved.group, this.options, this.observer, this.logger);
      this.groups.set(resolved.group, group);
    }
    const sub = new KafkaSubscription(this, group, resolved, dedupe, this.options);
    this.subscriptions.add(sub);
    try {
      await sub.start();
    } catch (error) {
      this.subscriptions.delete(sub);
      if (error instanceof BusError && error.code === 'invalid_subscription') throw error;
      throw new BusError(
        'unavailable',
        `cannot start the Kafka consumer of group ${resolved.group}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return sub;
  }

  /** @internal */
  admin(): ReturnType<KafkaTopics['admin']> {
    return this.topics.admin();
  }

  /** @internal */
  forget(sub: KafkaSubscription): void {
    this.subscriptions.delete(sub);
  }

  /** @internal This bus's consumer of `group` (what it subscribes, what it was assigned), for tests and probes. */
  groupConsumer(group: string): KafkaGroupConsumer | undefined {
    return this.groups.get(group);
  }

  async health(): Promise<BusHealth> {
    if (this.closed) return { ready: false, detail: 'closed' };
    try {
      const admin = await this.topics.admin();
      const cluster = await Promise.race([
        admin.describeCluster(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 5_000).unref()),
      ]);
      const groups = await Promise.all(
        [...this.groups.values()].filter((g) => g.size > 0).map((g) => g.health(admin)),
      );
      const failing = groups.filter((g) => !g.ready);
      if (failing.length > 0) return { ready: false, detail: failing.map((g) => g.detail).join('; ') };
      return {
        ready: true,
        detail: `kafka, ${cluster.brokers.length} broker(s), ${this.subscriptions.size} subscription(s) in ${groups.length} group(s)`,
      };
    } catch (error) {
      return { ready: false, detail: `kafka unreachable: ${(error as Error).message}` };
    }
  }

  async consumerLag(group: string, topics: readonly string[]): Promise<PartitionLag[]> {
    this.assertOpen();
    topics.forEach((t) => assertTopicName(t));
    return this.topics.consumerLag(group, topics);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.closed = true;
    await Promise.allSettled([...this.groups.values()].map((g) => g.close()));
    await Promise.allSettled([this.producer?.disconnect(), this.topics.close()]);
    this.processedStore?.close();
  }
}
