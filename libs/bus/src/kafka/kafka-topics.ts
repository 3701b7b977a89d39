// The admin side of the Kafka adapter: one kafkajs admin connection, topics created from the catalog (never altered),
// partition counts (cached: a topic's count changes only through ensureTopics here or an operator), and group lag.
import kafkajs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import { BusError, type BusObserver, type PartitionLag, type TopicSpec } from '../port.js';
import { assertTopicSpec, partitionCountMismatch } from '../validation.js';
import { stderrBusLogger, type BusLogger } from './kafka-logging.js';

/** The topic-level settings the catalog sets, as Kafka names and writes them. */
function wantedConfig(spec: TopicSpec): Array<[string, string]> {
  return [
    ...(spec.retentionMs !== undefined
      ? [['retention.ms', String(spec.retentionMs)] as [string, string]]
      : []),
    ...(spec.cleanupPolicy !== undefined ? [['cleanup.policy', spec.cleanupPolicy] as [string, string]] : []),
  ];
}

export interface KafkaTopicsOptions {
  /** Partitions for a topic created on first use when it is not in the catalog (default 3). */
  defaultPartitions?: number;
  /** Replication factor of topics created here (default: the broker's default). */
  replicationFactor?: number;
  autoCreateTopics?: boolean;
}

export class KafkaTopics {
  private readonly kafka: Kafka;
  private readonly options: KafkaTopicsOptions;
  private readonly assertOpen: () => void;
  private adminReady: Promise<Admin> | null = null;
  private readonly partitionCounts = new Map<string, number>();

  private readonly observer: BusObserver;
  private readonly logger: BusLogger;

  /** `assertOpen` throws when the bus is closed (checked before every topic change). */
  constructor(
    kafka: Kafka,
    options: KafkaTopicsOptions,
    assertOpen: () => void,
    observer: BusObserver = {},
    logger: BusLogger = stderrBusLogger,
  ) {
    this.kafka = kafka;
    this.options = options;
    this.assertOpen = assertOpen;
    this.observer = observer;
    this.logger = logger;
  }

  /** The admin client, connected once and shared; a failed connect is retried by the next call. */
  admin(): Promise<Admin> {
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

  /** Partitions of a topic, creating it (default partitions) when it is missing and auto-creation is on. */
  async partitionsOf(topic: string): Promise<number> {
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

  /**
   * Creates missing topics with the catalog's settings. Existing topics are never altered: a setting that differs
   * from the catalog's (an operator's override, e.g. a longer retention) is reported (a warning and
   * `edgefl_bus_topic_config_drift_total`) and kept, and a partition count that differs from the catalog's is refused
   * with `BusError('partition_count_mismatch')`: counts are fixed per topic version (grow as `…v2`), since more
   * partitions move existing keys to other partitions and break per-key order.
   */
  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    this.assertOpen();
    for (const spec of topics) assertTopicSpec(spec);
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
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
          configEntries: wantedConfig(spec).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    const present = topics.filter((t) => existing.has(t.name));
    if (present.length > 0) {
      const metadata = await admin.fetchTopicMetadata({ topics: present.map((t) => t.name) });
      const mismatched = present
        .map((spec) => ({
          spec,
          actual: metadata.topics.find((m) => m.name === spec.name)?.partitions.length ?? 0,
        }))
        .filter(({ spec, actual }) => actual !== spec.partitions);
      if (mismatched.length > 0) throw partitionCountMismatch(mismatched);
      await this.reportDrift(admin, present);
    }
    for (const spec of topics) this.partitionCounts.delete(spec.name);
  }

  /** Logs and counts every catalog setting an existing topic holds differently; changes nothing. */
  private async reportDrift(admin: Admin, specs: readonly TopicSpec[]): Promise<void> {
    const configured = specs.filter((s) => wantedConfig(s).length > 0);
    if (configured.length === 0) return;
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: configured.map((s) => ({
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name: s.name,
        configNames: wantedConfig(s).map(([name]) => name),
      })),
    });
    for (const spec of configured) {
      const entries = described.resources.find((r) => r.resourceName === spec.name)?.configEntries ?? [];
      for (const [name, wanted] of wantedConfig(spec)) {
        const actual = entries.find((e) => e.configName === name)?.configValue;
        if (actual === undefined || actual === wanted) continue;
        this.observer.topicDrift?.(spec.name, name);
        this.logger.warn(
          `topic ${spec.name}: ${name} is ${actual}, the catalog says ${wanted}; kept as it is`,
          {
            topic: spec.name,
            setting: name,
            actual,
            catalog: wanted,
          },
        );
      }
    }
  }

  /** Per-partition lag of a group: the high watermark minus its committed offset (or the low one, uncommitted). */
  async consumerLag(group: string, topics: readonly string[]): Promise<PartitionLag[]> {
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

  /** Deletes topics (e.g. a test suite's own topics on a shared broker); unknown ones are ignored. */
  async deleteTopics(names: readonly string[]): Promise<void> {
    if (names.length === 0) return;
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present });
    for (const name of names) this.partitionCounts.delete(name);
  }

  /** Disconnects the admin client if it was connected. */
  async close(): Promise<void> {
    const admin = this.adminReady ? await this.adminReady.catch(() => null) : null;
    await admin?.disconnect();
  }
}
