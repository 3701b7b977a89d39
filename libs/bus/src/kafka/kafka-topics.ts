// The admin side of the Kafka adapter: one kafkajs admin connection, topics created or grown from the catalog,
// partition counts (cached: a topic's count changes only through ensureTopics here or an operator), and group lag.
import kafkajs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import { BusError, type PartitionLag, type TopicSpec } from '../port.js';
import { assertTopicSpec } from '../validation.js';

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

  /** `assertOpen` throws when the bus is closed (checked before every topic change). */
  constructor(kafka: Kafka, options: KafkaTopicsOptions, assertOpen: () => void) {
    this.kafka = kafka;
    this.options = options;
    this.assertOpen = assertOpen;
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

  /** Creates missing topics with the catalog's settings; grows partitions and writes the settings of present ones. */
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

  /** Disconnects the admin client if it was connected. */
  async close(): Promise<void> {
    const admin = this.adminReady ? await this.adminReady.catch(() => null) : null;
    await admin?.disconnect();
  }
}
