// A fake kafkajs client for unit tests of the Kafka adapter's consumer design, no broker needed. It keeps what the
// design depends on the way Kafka and kafkajs do it: a consumer group coordinator that, on every join or leave,
// has the leader's partition assigner (the first protocol every member supports) assign from the members' join
// metadata, then hands each member its assignment with kafkajs's filtering of topics the member did not subscribe
// ("Consumer group received unsubscribed topics"); a group description with every member's assignment; committed
// offsets with metadata; topics with partition counts and configs. Records are handed to the owning member's
// eachBatch by `deliver`.
import kafkajs from 'kafkajs';
import type {
  Assigner,
  ConsumerConfig,
  ConsumerRunConfig,
  EachBatchPayload,
  Kafka,
  KafkaMessage,
  PartitionAssigner,
} from 'kafkajs';

const { AssignerProtocol, PartitionAssigners } = kafkajs;

type Listener = (event: { payload: Record<string, unknown> }) => void;

export class FakeConsumer {
  readonly events = { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' } as const;
  readonly memberId: string;
  readonly subscribed: string[] = [];
  readonly fromBeginning: Record<string, boolean> = {};
  readonly paused = new Set<string>();
  assignment: Record<string, number[]> = {};
  running = false;
  disconnected = false;
  private readonly listeners = new Map<string, Listener[]>();
  private eachBatch: ConsumerRunConfig['eachBatch'] | undefined;
  readonly assigners: Assigner[];

  constructor(
    private readonly cluster: FakeKafkaCluster,
    readonly config: ConsumerConfig,
    readonly client: string,
    index: number,
  ) {
    this.memberId = `${client}-${config.groupId}-${String(index).padStart(3, '0')}`;
    const factories: PartitionAssigner[] = config.partitionAssigners ?? [PartitionAssigners.roundRobin];
    this.assigners = factories.map((f) =>
      f({ cluster: cluster.clusterView() as never, groupId: config.groupId, logger: {} as never }),
    );
  }

  on(event: string, listener: Listener): () => void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
    return () => undefined;
  }

  emit(event: string, payload: Record<string, unknown>): void {
    for (const l of this.listeners.get(event) ?? []) l({ payload });
  }

  async connect(): Promise<void> {
    if (this.cluster.refuseConnect) throw new Error(this.cluster.refuseConnect);
  }

  async subscribe({ topics, fromBeginning }: { topics: string[]; fromBeginning?: boolean }): Promise<void> {
    if (this.running) throw new Error('Cannot subscribe to topic while consumer is running');
    for (const t of topics) {
      this.subscribed.push(t);
      this.fromBeginning[t] = fromBeginning === true;
    }
  }

  async run(config: ConsumerRunConfig): Promise<void> {
    this.eachBatch = config.eachBatch;
    this.running = true;
    this.cluster.join(this);
  }

  /** Batches being delivered: disconnect() waits for them, as kafkajs's runner does. */
  private readonly inflight = new Set<Promise<void>>();

  async disconnect(): Promise<void> {
    if (this.disconnected) return;
    this.disconnected = true;
    this.running = false;
    await Promise.allSettled([...this.inflight]);
    this.cluster.leave(this);
  }

  pause(topics: Array<{ topic: string }>): void {
    if (!this.running)
      throw new Error('Consumer group was not initialized, consumer#run must be called first');
    for (const { topic } of topics) this.paused.add(topic);
  }

  resume(topics: Array<{ topic: string }>): void {
    for (const { topic } of topics) this.paused.delete(topic);
  }

  seek(): void {}

  async commitOffsets(
    offsets: Array<{ topic: string; partition: number; offset: string; metadata?: string | null }>,
  ): Promise<void> {
    for (const o of offsets)
      this.cluster.commit(this.config.groupId, o.topic, o.partition, o.offset, o.metadata ?? null);
  }

  /** Hands `messages` of one partition to this consumer's eachBatch, as kafkajs's runner does. */
  async batch(topic: string, partition: number, messages: KafkaMessage[]): Promise<void> {
    if (!this.eachBatch) throw new Error('not running');
    const payload = {
      batch: {
        topic,
        partition,
        messages,
        highWatermark: String(messages.length),
        isEmpty: () => messages.length === 0,
      },
      resolveOffset: () => undefined,
      heartbeat: async () => undefined,
      commitOffsetsIfNecessary: async () => undefined,
      uncommittedOffsets: () => ({ topics: [] }),
      isRunning: () => this.running,
      isStale: () => false,
      pause: () => () => undefined,
    } as unknown as EachBatchPayload;
    const running = this.eachBatch(payload);
    this.inflight.add(running);
    try {
      await running;
    } finally {
      this.inflight.delete(running);
    }
  }
}

/** One fake cluster: share it between several clients (buses) to play several processes. */
export class FakeKafkaCluster {
  readonly topics = new Map<string, { partitions: number; config: Record<string, string> }>();
  readonly consumers: FakeConsumer[] = [];
  readonly groups = new Map<string, FakeConsumer[]>();
  readonly commits = new Map<string, { offset: string; metadata: string | null }>();
  readonly adminCalls: string[] = [];
  /** When set, consumers fail to connect with this message. */
  refuseConnect: string | null = null;
  private offsets = 0;

  topic(name: string, partitions: number, config: Record<string, string> = {}): this {
    this.topics.set(name, { partitions, config });
    return this;
  }

  /** The kafkajs client of one process. */
  client(name: string): Kafka {
    return this.clientOf(this, name);
  }

  private clientOf(cluster: FakeKafkaCluster, name: string): Kafka {
    let index = 0;
    return {
      consumer: (config: ConsumerConfig) => {
        const c = new FakeConsumer(cluster, config, name, index++);
        cluster.consumers.push(c);
        return c;
      },
      admin: () => cluster.admin(),
      producer: () => ({
        connect: async () => undefined,
        disconnect: async () => undefined,
        sendBatch: async ({
          topicMessages,
        }: {
          topicMessages: Array<{ topic: string; messages: Array<{ partition: number }> }>;
        }) =>
          topicMessages.flatMap((tm) =>
            tm.messages.map((m) => ({
              topicName: tm.topic,
              partition: m.partition,
              baseOffset: String(cluster.offsets++),
              errorCode: 0,
            })),
          ),
      }),
    } as unknown as Kafka;
  }

  clusterView() {
    return {
      addMultipleTargetTopics: async () => undefined,
      findTopicPartitionMetadata: (topic: string) =>
        Array.from({ length: this.topics.get(topic)?.partitions ?? 0 }, (_, partitionId) => ({
          partitionId,
        })),
    };
  }

  join(consumer: FakeConsumer): void {
    const members = this.groups.get(consumer.config.groupId) ?? [];
    members.push(consumer);
    this.groups.set(consumer.config.groupId, members);
    queueMicrotask(() => void this.rebalance(consumer.config.groupId));
  }

  leave(consumer: FakeConsumer): void {
    const members = (this.groups.get(consumer.config.groupId) ?? []).filter((m) => m !== consumer);
    this.groups.set(consumer.config.groupId, members);
    if (members.length > 0) queueMicrotask(() => void this.rebalance(consumer.config.groupId));
  }

  /** A join round: the leader's assigner plans from every member's metadata; kafkajs filters what each receives. */
  async rebalance(groupId: string): Promise<void> {
    const members = (this.groups.get(groupId) ?? []).filter((m) => m.running);
    if (members.length === 0) return;
    const leader = members[0]!;
    const protocol = leader.assigners.find((a) =>
      members.every((m) => m.assigners.some((b) => b.name === a.name)),
    );
    if (!protocol) throw new Error('INCONSISTENT_GROUP_PROTOCOL');
    const plan = await protocol.assign({
      members: members.map((m) => ({
        memberId: m.memberId,
        memberMetadata: m.assigners.find((a) => a.name === protocol.name)!.protocol({ topics: m.subscribed })
          .metadata,
      })),
      topics: leader.subscribed,
    });
    for (const m of members) {
      const encoded = plan.find((p) => p.memberId === m.memberId)?.memberAssignment;
      const decoded = encoded ? (AssignerProtocol.MemberAssignment.decode(encoded)?.assignment ?? {}) : {};
      // kafkajs drops topics the member did not subscribe
      m.assignment = Object.fromEntries(Object.entries(decoded).filter(([t]) => m.subscribed.includes(t)));
      m.emit(m.events.GROUP_JOIN, {
        groupId,
        memberId: m.memberId,
        isLeader: m === leader,
        memberAssignment: m.assignment,
      });
    }
  }

  /** The member that owns a partition now, if any. */
  owner(groupId: string, topic: string, partition: number): FakeConsumer | undefined {
    return (this.groups.get(groupId) ?? []).find(
      (m) => m.running && m.assignment[topic]?.includes(partition),
    );
  }

  /** Hands records to whichever member of the group owns the partition. */
  async deliver(groupId: string, topic: string, partition: number, values: string[]): Promise<void> {
    const owner = this.owner(groupId, topic, partition);
    if (!owner) throw new Error(`no member of ${groupId} owns ${topic}/${partition}`);
    const base = this.offsets;
    this.offsets += values.length;
    await owner.batch(
      topic,
      partition,
      values.map((v, i) => ({
        key: Buffer.from(v),
        value: Buffer.from(v),
        offset: String(base + i),
        timestamp: String(Date.now()),
        headers: { 'event-id': Buffer.from(`${topic}/${partition}/${v}`) },
        attributes: 0,
        size: 0,
      })) as unknown as KafkaMessage[],
    );
  }

  commit(groupId: string, topic: string, partition: number, offset: string, metadata: string | null): void {
    this.commits.set(`${groupId}/${topic}/${partition}`, { offset, metadata });
  }

  admin() {
    return this.adminOf(this);
  }

  private adminOf(cluster: FakeKafkaCluster) {
    const metadataOf = (names: string[]) => ({
      topics: names.map((name) => ({
        name,
        partitions: Array.from({ length: cluster.topics.get(name)?.partitions ?? 0 }, (_, partitionId) => ({
          partitionId,
        })),
      })),
    });
    return {
      connect: async () => undefined,
      disconnect: async () => undefined,
      listTopics: async () => [...cluster.topics.keys()],
      fetchTopicMetadata: async ({ topics }: { topics: string[] }) => metadataOf(topics),
      describeCluster: async () => ({ brokers: [{ nodeId: 0 }], controller: 0, clusterId: 'fake' }),
      createTopics: async ({
        topics,
      }: {
        topics: Array<{
          topic: string;
          numPartitions: number;
          configEntries?: Array<{ name: string; value: string }>;
        }>;
      }) => {
        cluster.adminCalls.push(`createTopics ${topics.map((t) => t.topic).join(',')}`);
        for (const t of topics)
          cluster.topic(
            t.topic,
            t.numPartitions,
            Object.fromEntries((t.configEntries ?? []).map((e) => [e.name, e.value])),
          );
        return true;
      },
      createPartitions: async () => void cluster.adminCalls.push('createPartitions'),
      alterConfigs: async () => void cluster.adminCalls.push('alterConfigs'),
      deleteTopics: async ({ topics }: { topics: string[] }) => {
        cluster.adminCalls.push(`deleteTopics ${topics.join(',')}`);
        for (const t of topics) cluster.topics.delete(t);
      },
      describeConfigs: async ({
        resources,
      }: {
        resources: Array<{ name: string; configNames: string[] }>;
      }) => ({
        resources: resources.map((r) => ({
          resourceName: r.name,
          configEntries: r.configNames
            .filter((n) => cluster.topics.get(r.name)?.config[n] !== undefined)
            .map((n) => ({ configName: n, configValue: cluster.topics.get(r.name)!.config[n]! })),
        })),
      }),
      fetchOffsets: async ({ groupId, topics }: { groupId: string; topics: string[] }) =>
        topics.map((topic) => ({
          topic,
          partitions: Array.from({ length: cluster.topics.get(topic)?.partitions ?? 0 }, (_, partition) => {
            const c = cluster.commits.get(`${groupId}/${topic}/${partition}`);
            return { partition, offset: c?.offset ?? '-1', metadata: c?.metadata ?? null };
          }),
        })),
      describeGroups: async (groupIds: string[]) => ({
        groups: groupIds.map((groupId) => ({
          groupId,
          state: 'Stable',
          members: (cluster.groups.get(groupId) ?? [])
            .filter((m) => m.running)
            .map((m) => ({
              memberId: m.memberId,
              memberAssignment: AssignerProtocol.MemberAssignment.encode({
                version: 1,
                assignment: m.assignment,
                userData: Buffer.alloc(0),
              }),
            })),
        })),
      }),
    };
  }
}
