// The consumer side of the Kafka adapter: one kafkajs consumer per subscription, its batches handed to the shared
// delivery core (../delivery.ts) with manual commits after success, pause/resume, and a graceful disconnect.
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { deliver, type DeliveryContext } from '../delivery.js';
import type {
  BusObserver,
  BusRecord,
  DeadLetterInfo,
  Headers,
  ProcessedEvents,
  Subscription,
} from '../port.js';
import type { ResolvedSubscribeOptions } from '../validation.js';

/** What a subscription needs from the bus that made it. */
export interface KafkaSubscriptionHost {
  readonly observer: BusObserver;
  deadLetter(info: DeadLetterInfo): Promise<void>;
  /** Called once the subscription has closed. */
  forget(sub: KafkaSubscription): void;
}

/** Consumer settings taken from the bus options. */
export interface KafkaConsumerSettings {
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** How long start() waits for the group join (default 60 s). */
  joinTimeoutMs?: number;
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
export class KafkaSubscription implements Subscription {
  readonly group: string;
  readonly topics: readonly string[];
  lastError: string | null = null;
  private readonly consumer: Consumer;
  private readonly bus: KafkaSubscriptionHost;
  private readonly options: ResolvedSubscribeOptions;
  private readonly joinTimeoutMs: number;
  private readonly delivery: Omit<DeliveryContext, 'shouldStop' | 'sleep'>;
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private readonly sleepers = new Set<() => void>();

  constructor(
    bus: KafkaSubscriptionHost,
    kafka: Kafka,
    options: ResolvedSubscribeOptions,
    dedupe: ProcessedEvents | null,
    config: KafkaConsumerSettings,
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
