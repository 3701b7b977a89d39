// The embedded adapter: a durable, partitioned log in one SQLite file (node:sqlite, WAL), with consumer groups,
// committed offsets, leases for rebalancing, retention, and several processes sharing the file.
//
// This file is the EventBus port over the bus file: topics, grouped publishes, subscribe, health, lag, drain. The
// parts live beside it: store.ts (the file, its schema and transactions), subscription.ts (a member's poll loop and
// commits), membership.ts (joining, heartbeats, leases), assignment.ts (who owns which partition, pure),
// retention.ts (trims), wake.ts (in-process wake-ups).
//
// Why by hand: no maintained library offers a Kafka-like log with consumer groups over SQLite; the pieces that
// exist (the SQLite engine, the murmur2 partitioner rule) are used as they are.
import { deadLetterRecord, jsonDeadLetterEncoder } from '../dead-letter.js';
import { SqliteInbox } from '../inbox.js';
import { PartitionChooser } from '../partitioner.js';
import {
  BusError,
  type BusHealth,
  type BusObserver,
  type DeadLetterEncoder,
  type DeadLetterInfo,
  type BusRecord,
  type EventBus,
  type OutgoingRecord,
  type PartitionLag,
  type PublishedRecord,
  type SubscribeOptions,
  type Subscription,
  type TopicSpec,
} from '../port.js';
import { ProcessedEventStore, type ProcessedEventStoreOptions } from '../processed-events.js';
import {
  assertTopicName,
  assertTopicSpec,
  normaliseRecords,
  partitionCountMismatch,
  resolveSubscribeOptions,
  type NormalisedRecord,
} from '../validation.js';
import { trimRecords } from './retention.js';
import { BusStore } from './store.js';
import { EmbeddedSubscription, type SubscriptionHost } from './subscription.js';
import { announcePublish } from './wake.js';

export interface EmbeddedBusOptions {
  /** The SQLite file (created when absent). Several processes may share it. */
  path: string;
  /** Partitions of a topic created on first use (default 3). Topics from ensureTopics use the catalog's count. */
  defaultPartitions?: number;
  /** Create an unknown topic on publish/subscribe (default true); false makes it an error. */
  autoCreateTopics?: boolean;
  /** How often a consumer looks for other processes' writes (default 100 ms). In-process publishes wake at once. */
  pollIntervalMs?: number;
  /** Member heartbeat and rebalance period (default 1,000 ms). */
  heartbeatIntervalMs?: number;
  /** A member silent this long loses its partitions (default 10,000 ms). */
  sessionTimeoutMs?: number;
  /** Retention trim period (default 60,000 ms; 0 disables the timer, trimNow() still works). */
  retentionCheckIntervalMs?: number;
  /** SQLite synchronous mode: NORMAL (default; survives a process crash) or FULL (also power loss). */
  synchronous?: 'NORMAL' | 'FULL';
  deadLetterEncoder?: DeadLetterEncoder;
  observer?: BusObserver;
  processedEvents?: ProcessedEventStoreOptions;
}

interface PendingPublish {
  records: NormalisedRecord[];
  resolve: (published: PublishedRecord[]) => void;
  reject: (error: unknown) => void;
}

export class EmbeddedBus implements EventBus, SubscriptionHost {
  readonly path: string;
  /** @internal The bus file (subscriptions and retention use it). */
  readonly store: BusStore;
  private readonly options: Required<
    Omit<EmbeddedBusOptions, 'observer' | 'deadLetterEncoder' | 'processedEvents' | 'synchronous'>
  >;
  readonly observer: BusObserver;
  private readonly deadLetterEncoder: DeadLetterEncoder;
  private readonly partitionChooser = new PartitionChooser();
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private pending: PendingPublish[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private closePromise: Promise<void> | null = null;
  private readonly retentionTimer: NodeJS.Timeout | null;
  private processedStore: ProcessedEventStore | null = null;
  private ownInbox: SqliteInbox | null = null;
  private readonly processedOptions: ProcessedEventStoreOptions;

  constructor(options: EmbeddedBusOptions) {
    if (!options || typeof options.path !== 'string' || options.path.length === 0) {
      throw new BusError('invalid_config', 'the embedded bus needs a file path');
    }
    this.path = options.path;
    this.options = {
      path: options.path,
      defaultPartitions: options.defaultPartitions ?? 3,
      autoCreateTopics: options.autoCreateTopics ?? true,
      pollIntervalMs: options.pollIntervalMs ?? 100,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1_000,
      sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
      retentionCheckIntervalMs: options.retentionCheckIntervalMs ?? 60_000,
    };
    if (this.options.sessionTimeoutMs <= this.options.heartbeatIntervalMs) {
      throw new BusError('invalid_config', 'sessionTimeoutMs must be longer than heartbeatIntervalMs');
    }
    this.observer = options.observer ?? {};
    this.deadLetterEncoder = options.deadLetterEncoder ?? jsonDeadLetterEncoder;
    this.processedOptions = options.processedEvents ?? {};
    // A lock wait never blocks the event loop for more than a slice, and gives up well within the session.
    const lock = { sliceMs: 20, maxWaitMs: Math.floor(this.options.sessionTimeoutMs / 2) };
    this.store = new BusStore(options.path, options.synchronous, this.options, lock, this.observer);
    const interval = this.options.retentionCheckIntervalMs;
    this.retentionTimer = interval > 0 ? setInterval(() => this.safeTrim(), interval).unref() : null;
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
  }

  // ---- the port -------------------------------------------------------------------------------------------------

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    for (const spec of topics) assertTopicSpec(spec);
    await this.store.tx(() => {
      // as the Kafka adapter: an existing topic's partition count is never changed (nor grown) silently
      const mismatched = topics.flatMap((spec) => {
        const row = this.store.stmt('SELECT partitions FROM bus_topics WHERE name = ?').get(spec.name) as
          { partitions: number } | undefined;
        return row && row.partitions !== spec.partitions ? [{ spec, actual: row.partitions }] : [];
      });
      if (mismatched.length > 0) throw partitionCountMismatch(mismatched);
      for (const spec of topics) {
        const partitions = spec.partitions;
        const retention = spec.retentionMs === undefined || spec.retentionMs === -1 ? null : spec.retentionMs;
        this.store
          .stmt(
            `INSERT INTO bus_topics (name, partitions, retention_ms, cleanup_policy) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET partitions = excluded.partitions, retention_ms = excluded.retention_ms,
           cleanup_policy = excluded.cleanup_policy`,
          )
          .run(spec.name, partitions, retention, spec.cleanupPolicy ?? 'delete');
        this.store.addPartitionRows(spec.name, partitions);
      }
    });
  }

  async publish(records: readonly OutgoingRecord[]): Promise<PublishedRecord[]> {
    this.assertOpen();
    const normalised = normaliseRecords(records);
    if (normalised.length === 0) return [];
    // Concurrent publish calls are grouped into one transaction (one fsync-free WAL commit for all of them).
    return new Promise((resolve, reject) => {
      this.pending.push({ records: normalised, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        // After the flush before it: a flush waiting for the lock must not let a later one overtake it (key order).
        const previous = this.flushing;
        this.flushing = new Promise((done) =>
          setImmediate(() => void previous.then(() => this.flush()).finally(done)),
        );
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    let results: PublishedRecord[][];
    let announce = () => {};
    try {
      results = await this.store.tx(
        () => {
          const placed = this.store.appendRecords(
            this.partitionChooser,
            batch.flatMap((p) => p.records),
            Date.now(),
          );
          announce = this.announcer(placed);
          let at = 0;
          return batch.map((p) => placed.slice(at, (at += p.records.length)));
        },
        { now: true },
      );
    } catch (error) {
      const failure =
        error instanceof BusError
          ? error
          : new BusError('publish_failed', `publish failed: ${(error as Error).message}`, { cause: error });
      for (const p of batch) p.reject(failure);
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]!));
    announce();
  }

  /** Counts and announces records once their transaction committed. */
  private announcer(placed: readonly PublishedRecord[]): () => void {
    return () => {
      const counts = new Map<string, number>();
      for (const r of placed) counts.set(r.topic, (counts.get(r.topic) ?? 0) + 1);
      for (const [topic, n] of counts) this.observer.published?.(topic, n);
      announcePublish(this.path, new Set(counts.keys()));
    };
  }

  /** @internal */
  async deadLetterRecords(infos: readonly DeadLetterInfo[]): Promise<NormalisedRecord[]> {
    return normaliseRecords(
      await Promise.all(infos.map((info) => deadLetterRecord(info, this.deadLetterEncoder))),
    );
  }

  /** @internal */
  appendInTx(records: readonly NormalisedRecord[]): () => void {
    return this.announcer(this.store.appendRecords(this.partitionChooser, records, Date.now()));
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const resolved = resolveSubscribeOptions(options);
    const dedupe = resolved.dedupe === true ? this.processedEvents() : resolved.dedupe || null;
    const sub = new EmbeddedSubscription(this, resolved, dedupe, this.options);
    this.subscriptions.add(sub);
    try {
      await sub.start();
    } catch (error) {
      this.subscriptions.delete(sub);
      await sub.close().catch(() => undefined);
      throw error;
    }
    return sub;
  }

  /**
   * A transactional inbox in the bus file: the handler's effects (tables of its own in this file), the processed
   * mark and the group's offset past the record commit in one transaction, so a replay is skipped exactly. Call
   * `run` from a handler of a subscription of this bus.
   */
  inbox(): SqliteInbox {
    this.assertOpen();
    return (this.ownInbox ??= new SqliteInbox(this.processedEvents(), {
      transaction: (fn) => this.store.tx(fn),
      commitOffset: (group, record) => this.commitInTx(group, record),
    }));
  }

  /** Inside a transaction: the offset past `record`, by the member of `group` here that holds its partition. */
  private commitInTx(group: string, record: BusRecord): boolean {
    for (const sub of this.subscriptions) if (sub.group === group && sub.commitInTx(record)) return true;
    return false;
  }

  /** The processed-events store kept in the bus file (used by `dedupe: true`). */
  processedEvents(): ProcessedEventStore {
    this.assertOpen();
    return (this.processedStore ??= new ProcessedEventStore(this.store.db, this.processedOptions));
  }

  /** @internal */
  forget(sub: EmbeddedSubscription): void {
    this.subscriptions.delete(sub);
  }

  async health(): Promise<BusHealth> {
    if (this.closed) return { ready: false, detail: 'closed' };
    try {
      this.store.stmt('SELECT 1').get();
    } catch (error) {
      return { ready: false, detail: `bus file unreadable: ${(error as Error).message}` };
    }
    const failing = [...this.subscriptions].filter((s) => s.lastError !== null);
    if (failing.length > 0) {
      return { ready: false, detail: failing.map((s) => `group ${s.group}: ${s.lastError}`).join('; ') };
    }
    return { ready: true, detail: `embedded bus, ${this.subscriptions.size} subscription(s)` };
  }

  async consumerLag(group: string, topics: readonly string[]): Promise<PartitionLag[]> {
    this.assertOpen();
    const lags: PartitionLag[] = [];
    for (const topic of topics) {
      assertTopicName(topic);
      const rows = this.store
        .stmt(
          `SELECT p.part AS part, p.next_off AS next_off, o.committed AS committed,
           (SELECT MIN(off) FROM bus_records r WHERE r.topic = p.topic AND r.part = p.part) AS first_off
         FROM bus_partitions p LEFT JOIN bus_offsets o ON o.grp = ? AND o.topic = p.topic AND o.part = p.part
         WHERE p.topic = ? ORDER BY p.part`,
        )
        .all(group, topic) as Array<{
        part: number;
        next_off: number;
        committed: number | null;
        first_off: number | null;
      }>;
      for (const r of rows) {
        const from = Math.max(r.committed ?? 0, r.first_off ?? r.next_off);
        lags.push({ topic, partition: r.part, lag: Math.max(0, r.next_off - from) });
      }
    }
    return lags;
  }

  /**
   * Deletes records older than their topic's retention, except records an active group (one with a live member)
   * has not committed yet; compacts `compact` topics (keeps the newest record per key). Returns records removed.
   * `now` dates the records (tests pass a later time); group liveness always uses the real clock.
   */
  trimNow(now = Date.now()): Promise<number> {
    this.assertOpen();
    const liveSince = Date.now() - this.options.sessionTimeoutMs;
    return trimRecords(this.store, now, liveSince);
  }

  private safeTrim(): void {
    try {
      // A busy file or a closed bus: the next period tries again.
      this.trimNow().catch(() => undefined);
    } catch {
      // closed
    }
  }

  /** Idempotent, also when called again while the first call is still draining. */
  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    await this.flushing;
    if (this.pending.length > 0) await this.flush();
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.processedStore?.close();
    this.store.close();
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }
}
