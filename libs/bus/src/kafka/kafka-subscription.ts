// The consumer side of the Kafka adapter, per subscription: the batches of its topics (fetched by the group's one
// kafkajs consumer, kafka-group-consumer.ts) handed to the shared delivery core (../delivery.ts) with manual
// commits after success, pause/resume, and a graceful leave.
import type { Admin, Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import { deliver, type DeliveryContext, type Progress } from '../delivery.js';
import type {
  BusObserver,
  BusRecord,
  DeadLetterInfo,
  Headers,
  ProcessedEvents,
  Subscription,
} from '../port.js';
import type { ResolvedSubscribeOptions } from '../validation.js';
import type { GroupMember, KafkaConsumerSettings, KafkaGroupConsumer } from './kafka-group-consumer.js';

/** What a subscription needs from the bus that made it. */
export interface KafkaSubscriptionHost {
  readonly observer: BusObserver;
  deadLetter(info: DeadLetterInfo): Promise<void>;
  /** The cluster admin (to read a partition's committed offset and its metadata). */
  admin(): Promise<Admin>;
  /** Called once the subscription has closed. */
  forget(sub: KafkaSubscription): void;
}

interface DeliveryMark {
  /** Offset the delivery in flight started at. */
  off: string;
  /** Deliveries started there that have not ended. */
  starts: number;
}

/** The delivery record in a committed offset's metadata; anything else (another client's metadata) is no record. */
function parseMark(metadata: string | null): DeliveryMark {
  try {
    const m = JSON.parse(metadata ?? '') as Partial<DeliveryMark>;
    if (typeof m.off === 'string' && Number.isInteger(m.starts) && m.starts! >= 0)
      return { off: m.off, starts: m.starts! };
  } catch {
    // not ours
  }
  return { off: '', starts: 0 };
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

/**
 * One subscription of a group on this bus: its records come from the group's one kafkajs consumer
 * (KafkaGroupConsumer), which hands it the batches of its topics; here they go through the delivery core with manual
 * commits, pause/resume and the crash-count record in the committed offset's metadata.
 */
export class KafkaSubscription implements Subscription, GroupMember {
  readonly group: string;
  readonly topics: readonly string[];
  private readonly groupConsumer: KafkaGroupConsumer;
  private readonly bus: KafkaSubscriptionHost;
  private readonly options: ResolvedSubscribeOptions;
  private readonly sessionTimeoutMs: number;
  private readonly delivery: Pick<DeliveryContext, 'options' | 'dedupe' | 'observer'>;
  /**
   * The delivery record of each partition, as last written in the group's committed-offset metadata: where the
   * delivery in flight started and how many deliveries started there. Read from the broker once per assignment.
   */
  private readonly deliveries = new Map<string, DeliveryMark>();
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private readonly sleepers = new Set<() => void>();

  constructor(
    bus: KafkaSubscriptionHost,
    groupConsumer: KafkaGroupConsumer,
    options: ResolvedSubscribeOptions,
    dedupe: ProcessedEvents | null,
    config: KafkaConsumerSettings,
  ) {
    this.bus = bus;
    this.groupConsumer = groupConsumer;
    this.options = options;
    this.group = options.group;
    this.topics = [...new Set(options.topics)];
    this.sessionTimeoutMs = config.sessionTimeoutMs ?? 30_000;
    this.delivery = { options, dedupe, observer: bus.observer };
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get fromBeginning(): boolean {
    return this.options.fromBeginning;
  }

  get maxPartitionsInFlight(): number {
    return this.options.maxPartitionsInFlight;
  }

  /** Joins the group's consumer; resolves once the group has been joined with this subscription's topics. */
  start(): Promise<void> {
    return this.groupConsumer.add(this);
  }

  assigned(): void {
    this.deliveries.clear(); // another member may have written them meanwhile
  }

  async eachBatch(
    { batch, heartbeat, isRunning, isStale, resolveOffset }: EachBatchPayload,
    consumer: Consumer,
  ): Promise<void> {
    const all = batch.messages.map((m) => toBusRecord(batch.topic, batch.partition, m));
    const shouldStop = () => this.closing || this.isPaused || !isRunning() || isStale();
    let lastHeartbeatAt = Date.now();
    const sleep = async (ms: number) => {
      // Keep the membership alive through long backoffs.
      const until = Date.now() + ms;
      while (!shouldStop() && Date.now() < until) {
        await this.sleep(Math.max(0, Math.min(1_000, until - Date.now())));
        await heartbeat()
          .then(() => (lastHeartbeatAt = Date.now()))
          .catch(() => undefined);
      }
    };
    const { topic, partition } = batch;
    const ctx: DeliveryContext = {
      ...this.delivery,
      // A zombie stops at once: more than a session since the last heartbeat (a synchronous handler kept kafkajs
      // from sending one), so the group may have moved on; a heartbeat now fails if this member was fenced.
      shouldStop: async () => {
        if (shouldStop()) return true;
        if (Date.now() - lastHeartbeatAt <= this.sessionTimeoutMs) return false;
        try {
          await heartbeat();
          lastHeartbeatAt = Date.now();
          return shouldStop();
        } catch {
          return true;
        }
      },
      sleep,
      begin: (first) => this.begin(consumer, topic, partition, first.offset),
      commit: (progress) => this.commit(consumer, topic, partition, progress, resolveOffset),
    };
    let next = 0; // index of the first record not done
    while (next < all.length && !shouldStop()) {
      const chunk = all.slice(next, next + this.options.maxBatchSize);
      const done = await deliver(ctx, chunk);
      next += done;
      if (done < chunk.length) break;
      await heartbeat();
      lastHeartbeatAt = Date.now();
    }
    // Stopped early by pause, or before a record whose dead letter could not be written: seek back so prefetched
    // batches are dropped and the consumer refetches from the first unhandled record (on resume, or at once).
    // (On close or rebalance the next owner starts at the committed offset.)
    if (next < all.length && !this.closing && isRunning() && !isStale()) {
      consumer.seek({ topic: batch.topic, partition: batch.partition, offset: all[next]!.offset });
    }
  }

  /**
   * Persists the start of a delivery at `offset` in the committed offset's metadata (the offset itself does not
   * move), the per-group attempts record: it lives with the group in Kafka, so whichever member takes the partition
   * over after a crash reads it, on any machine, with no store or topic of its own.
   */
  private async begin(consumer: Consumer, topic: string, partition: number, offset: string): Promise<number> {
    const k = `${topic}\u0000${partition}`;
    let mark = this.deliveries.get(k);
    if (!mark) {
      const admin = await this.bus.admin();
      const [fetched] = await admin.fetchOffsets({ groupId: this.group, topics: [topic] });
      mark = parseMark(fetched?.partitions.find((p) => p.partition === partition)?.metadata ?? null);
    }
    const before = mark.off === offset ? mark.starts : 0;
    const started = { off: offset, starts: before + 1 };
    await consumer.commitOffsets([{ topic, partition, offset, metadata: JSON.stringify(started) }]);
    this.deliveries.set(k, started);
    return before;
  }

  /**
   * Progress: processed ids first (at-least-once: a crash after them replays records the dedupe then skips), dead
   * letters published with their deterministic event id (a crash before the offset commit publishes the same one
   * again; consumers of the dead-letter topic dedupe by it), then the offset with the delivery record as metadata.
   */
  private async commit(
    consumer: Consumer,
    topic: string,
    partition: number,
    p: Progress,
    resolveOffset: (offset: string) => void,
  ): Promise<boolean> {
    if (p.last === null && !p.final && p.deadLetters.length === 0) return true;
    if (this.delivery.dedupe && p.processed.length > 0)
      this.delivery.dedupe.markProcessed(this.group, p.processed);
    for (const info of p.deadLetters) await this.bus.deadLetter(info);
    const k = `${topic}\u0000${partition}`;
    const next = p.last === null ? this.deliveries.get(k)?.off : (BigInt(p.last.offset) + 1n).toString();
    if (next === undefined) return true;
    const mark = { off: next, starts: p.final ? 0 : 1 };
    if (p.last !== null) resolveOffset(p.last.offset);
    await consumer.commitOffsets([{ topic, partition, offset: next, metadata: JSON.stringify(mark) }]);
    this.deliveries.set(k, mark);
    return true;
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
    this.groupConsumer.applyPause(this);
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.groupConsumer.applyPause(this);
  }

  close(): Promise<void> {
    return (this.closePromise ??= (async () => {
      this.closing = true;
      for (const s of [...this.sleepers]) s();
      // The group's consumer restarts without this subscription: its running batch stops between records and
      // commits first; the other subscriptions of the group go on after the rejoin.
      await this.groupConsumer.remove(this);
      this.bus.forget(this);
    })());
  }
}
