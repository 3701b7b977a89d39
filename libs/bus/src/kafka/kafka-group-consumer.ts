// One kafkajs consumer per (bus, group): subscribed to the union of the topics of every subscription this bus made
// in that group, each fetched batch dispatched to the subscription of its topic (see libs/bus/README.md, "Kafka:
// one consumer per group"). A subscription added or closed while the consumer runs restarts it with the new union
// (subscribe() calls made in the same tick share one restart); a crashed consumer is restarted with backoff.
import kafkajs from 'kafkajs';
import type { Admin, Consumer, ConsumerGroupJoinEvent, EachBatchPayload, Kafka } from 'kafkajs';
import { BusError, type BusObserver } from '../port.js';
import type { BusLogger } from './kafka-logging.js';
import { subscriptionAssigner } from './subscription-assigner.js';

const { AssignerProtocol, PartitionAssigners } = kafkajs;

/** What the group consumer needs from each subscription of its group. */
export interface GroupMember {
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  readonly maxPartitionsInFlight: number;
  readonly paused: boolean;
  /** Delivers one fetched batch of one of its topics through `consumer` (commits, seeks). */
  eachBatch(payload: EachBatchPayload, consumer: Consumer): Promise<void>;
  /** A new assignment: cached per-partition state may have been changed by another member meanwhile. */
  assigned(): void;
}

/** Consumer settings taken from the bus options. */
export interface KafkaConsumerSettings {
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** How long a member may take to rejoin in a rebalance (default 60 s); also the grace for unowned partitions. */
  rebalanceTimeoutMs?: number;
  /** How long subscribe() waits for the group join (default 60 s). */
  joinTimeoutMs?: number;
  /** First delay before restarting a crashed consumer (default 1 s, doubling up to 30 s). */
  restartBackoffMs?: number;
  /**
   * `edgefl` (default): the subscription-aware assigner, then RoundRobin. `client`: the client's own default, for a
   * client that assigns natively and takes no kafkajs assigner (@confluentinc/kafka-javascript: librdkafka's
   * assigners already honour each member's subscription).
   */
  partitionAssigners?: 'edgefl' | 'client';
}

export interface GroupHealth {
  ready: boolean;
  detail: string;
}

const MAX_RESTART_BACKOFF_MS = 30_000;

/** A counting semaphore: at most `limit` holders (the per-subscription cap on partitions in flight). */
class Slots {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  constructor(private readonly limit: () => number) {}
  async take(): Promise<() => void> {
    if (this.used >= this.limit()) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.used++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.used--;
    };
  }
}

export class KafkaGroupConsumer {
  readonly group: string;
  private readonly kafka: Kafka;
  private readonly settings: KafkaConsumerSettings;
  private readonly observer: BusObserver;
  private readonly logger: BusLogger;
  private readonly members = new Map<GroupMember, Slots>();
  private readonly byTopic = new Map<string, GroupMember>();
  private consumer: Consumer | null = null;
  /** This member's partitions since its last join, by topic. */
  private assignment: Record<string, number[]> = {};
  /** Why the consumer is down (crashed, failed to restart), or null. */
  private crash: string | null = null;
  private restartAttempt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Serialises starts and stops; `pending` is the queued (not yet started) reconcile new changes may join. */
  private chain: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;
  /** Since when each topic has had partitions no member of the group owns (readiness grace). */
  private readonly unownedSince = new Map<string, number>();
  private closed = false;

  constructor(
    kafka: Kafka,
    group: string,
    settings: KafkaConsumerSettings,
    observer: BusObserver,
    logger: BusLogger,
  ) {
    this.kafka = kafka;
    this.group = group;
    this.settings = settings;
    this.observer = observer;
    this.logger = logger;
  }

  /** Topics this process consumes in the group. */
  get topics(): string[] {
    return [...this.byTopic.keys()];
  }

  get size(): number {
    return this.members.size;
  }

  /** Joins `member` to the group's consumer (restarting it with the union of topics); resolves once joined. */
  async add(member: GroupMember): Promise<void> {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
    for (const topic of member.topics) {
      if (this.byTopic.has(topic))
        throw new BusError(
          'invalid_subscription',
          `group ${this.group} already consumes ${topic} on this bus: one subscription per topic and group in a process (members of a group split partitions, so a second one here would get none of its own)`,
        );
    }
    this.members.set(member, new Slots(() => member.maxPartitionsInFlight));
    for (const topic of member.topics) this.byTopic.set(topic, member);
    try {
      await this.reconcile();
    } catch (error) {
      this.detach(member);
      // The others keep consuming: restart without this member (in the background, with backoff on failure).
      if (this.members.size > 0) this.reconcile().catch((e: unknown) => this.crashed(e, false));
      else this.reconcile().catch(() => undefined);
      throw error;
    }
  }

  /** Removes `member`: its in-flight batch finishes and commits, the consumer restarts with the rest (or stops). */
  async remove(member: GroupMember): Promise<void> {
    if (!this.members.has(member)) return;
    this.detach(member);
    await this.reconcile().catch((error: unknown) => {
      if (this.members.size > 0) this.crashed(error, false);
    });
  }

  private detach(member: GroupMember): void {
    this.members.delete(member);
    for (const topic of member.topics) if (this.byTopic.get(topic) === member) this.byTopic.delete(topic);
  }

  /** Pauses or resumes fetching the topics of `member` (kept across restarts: members are asked again). */
  applyPause(member: GroupMember): void {
    const consumer = this.consumer;
    if (!consumer) return;
    const topics = member.topics.map((topic) => ({ topic }));
    try {
      if (member.paused) consumer.pause(topics);
      else consumer.resume(topics);
    } catch {
      // not running yet: the start applies it
    }
  }

  /** Stops the current consumer and starts one over the current members; changes made meanwhile join the next. */
  private reconcile(): Promise<void> {
    if (this.pending) return this.pending;
    const run = this.chain.then(async () => {
      this.pending = null;
      await this.stopConsumer();
      if (this.members.size > 0 && !this.closed) await this.startConsumer();
    });
    this.pending = run;
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async stopConsumer(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = null;
    this.assignment = {};
    // disconnect() stops fetching, waits for the running batches (which stop between records and commit), leaves.
    if (consumer) await consumer.disconnect().catch(() => undefined);
  }

  private async startConsumer(): Promise<void> {
    const sessionTimeout = this.settings.sessionTimeoutMs ?? 30_000;
    const consumer = this.kafka.consumer({
      groupId: this.group,
      sessionTimeout,
      rebalanceTimeout: this.settings.rebalanceTimeoutMs ?? 60_000,
      heartbeatInterval: this.settings.heartbeatIntervalMs ?? 3_000,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 250,
      // Ours first; RoundRobin too, so a group still holding members of an older release can agree on a protocol.
      ...(this.settings.partitionAssigners === 'client'
        ? {}
        : { partitionAssigners: [subscriptionAssigner, PartitionAssigners.roundRobin] }),
    });
    const joinTimeoutMs = this.settings.joinTimeoutMs ?? 60_000;
    let timer: NodeJS.Timeout | undefined;
    let joinedOnce: () => void = () => undefined;
    const joined = new Promise<void>((resolve, reject) => {
      joinedOnce = resolve;
      timer = setTimeout(() => reject(new Error(`no group join within ${joinTimeoutMs} ms`)), joinTimeoutMs);
    });
    // Awaited below; when connect/subscribe/run fail first, the abandoned wait must not reject unobserved later.
    joined.catch(() => undefined);
    consumer.on(consumer.events.GROUP_JOIN, (event: ConsumerGroupJoinEvent) => {
      if (this.consumer !== consumer) return;
      this.assignment = event.payload.memberAssignment ?? {};
      this.crash = null;
      this.restartAttempt = 0;
      for (const member of this.members.keys()) member.assigned();
      clearTimeout(timer);
      joinedOnce();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (this.consumer !== consumer) return;
      // kafkajs restarts by itself after a retriable error; after any other it stays down, so we restart it.
      this.crashed(event.payload.error, event.payload.restart);
    });
    this.consumer = consumer;
    try {
      await consumer.connect();
      for (const member of this.members.keys()) {
        await consumer.subscribe({ topics: [...member.topics], fromBeginning: member.fromBeginning });
      }
      const concurrency = [...this.members.keys()].reduce((n, m) => n + m.maxPartitionsInFlight, 0);
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: Math.max(1, concurrency),
        eachBatch: (payload) => this.dispatch(payload, consumer),
      });
      for (const member of this.members.keys()) if (member.paused) this.applyPause(member);
      await joined;
    } catch (error) {
      if (this.consumer === consumer) this.consumer = null;
      await consumer.disconnect().catch(() => undefined);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async dispatch(payload: EachBatchPayload, consumer: Consumer): Promise<void> {
    const member = this.byTopic.get(payload.batch.topic);
    const slots = member ? this.members.get(member) : undefined;
    if (!member || !slots) return; // closed meanwhile: left unresolved, the next owner starts at the commit
    const release = await slots.take();
    try {
      if (payload.isRunning() && !payload.isStale()) await member.eachBatch(payload, consumer);
    } finally {
      release();
    }
  }

  /** The consumer crashed: readiness says so until it has joined again; restart it unless kafkajs does. */
  private crashed(error: unknown, kafkajsRestarts: boolean): void {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    this.crash = `consumer crashed: ${message}`;
    this.logger.error(`consumer of group ${this.group} crashed`, {
      groupId: this.group,
      error: message,
      restartedBy: kafkajsRestarts ? 'kafkajs' : 'bus',
    });
    this.observer.consumerRestarted?.(this.group);
    if (kafkajsRestarts || this.closed || this.restartTimer) return;
    const base = this.settings.restartBackoffMs ?? 1_000;
    const delay = Math.min(MAX_RESTART_BACKOFF_MS, base * 2 ** this.restartAttempt);
    this.restartAttempt++;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closed || this.members.size === 0) return;
      this.reconcile().catch((e: unknown) => this.crashed(e, false));
    }, delay);
    this.restartTimer.unref();
  }

  /**
   * Readiness of this group: not while its consumer is down, nor while a topic it consumes has had partitions that
   * no member of the group owns for longer than a rebalance (read from the group's description: every member's
   * assignment). Reports the unowned count per topic to the observer.
   */
  async health(admin: Admin): Promise<GroupHealth> {
    if (this.crash) return { ready: false, detail: `group ${this.group}: ${this.crash}` };
    if (this.members.size > 0 && !this.consumer)
      return { ready: false, detail: `group ${this.group}: consumer not running` };
    const topics = this.topics;
    if (topics.length === 0) return { ready: true, detail: `group ${this.group}: no topics` };
    const [description] = (await admin.describeGroups([this.group])).groups;
    const owned = new Map<string, Set<number>>();
    for (const m of description?.members ?? []) {
      const decoded = m.memberAssignment?.length
        ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment)
        : null;
      for (const [topic, partitions] of Object.entries(decoded?.assignment ?? {})) {
        const set = owned.get(topic) ?? new Set<number>();
        for (const p of partitions) set.add(p);
        owned.set(topic, set);
      }
    }
    const metadata = await admin.fetchTopicMetadata({ topics });
    const grace = this.settings.rebalanceTimeoutMs ?? 60_000;
    const now = Date.now();
    const late: string[] = [];
    for (const topic of topics) {
      const partitions = metadata.topics.find((t) => t.name === topic)?.partitions ?? [];
      const unowned = partitions.filter((p) => !owned.get(topic)?.has(p.partitionId)).length;
      this.observer.unownedPartitions?.(this.group, topic, unowned);
      if (unowned === 0) {
        this.unownedSince.delete(topic);
        continue;
      }
      const since = this.unownedSince.get(topic) ?? now;
      this.unownedSince.set(topic, since);
      if (now - since >= grace)
        late.push(
          `${topic}: ${unowned} of ${partitions.length} partition(s) owned by no member for ${now - since} ms`,
        );
    }
    if (late.length > 0)
      return {
        ready: false,
        detail: `group ${this.group} (${description?.state ?? '?'}): ${late.join('; ')}`,
      };
    return { ready: true, detail: `group ${this.group}: ${topics.length} topic(s)` };
  }

  /** This member's current assignment (topic → partitions), as of its last join. */
  ownAssignment(): Record<string, number[]> {
    return { ...this.assignment };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    this.members.clear();
    this.byTopic.clear();
    await this.chain;
    await this.stopConsumer();
  }
}
