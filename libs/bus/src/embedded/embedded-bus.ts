// The embedded adapter: a durable, partitioned log in one SQLite file (node:sqlite, WAL), with consumer groups,
// committed offsets, leases for rebalancing, retention, and several processes sharing the file.
//
// Why by hand: no maintained library offers a Kafka-like log with consumer groups over SQLite; the pieces that
// exist (the SQLite engine, the murmur2 partitioner rule) are used as they are.
import { randomUUID } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
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
import { ProcessedEventStore, type ProcessedEventStoreOptions } from '../processed-events.js';
import {
  assertTopicName,
  assertTopicSpec,
  normaliseRecords,
  resolveSubscribeOptions,
  type NormalisedRecord,
  type ResolvedSubscribeOptions,
} from '../validation.js';
import { announcePublish, onPublish } from './wake.js';

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

interface RecordRow {
  off: number;
  rkey: string | null;
  val: Uint8Array;
  headers: string;
  event_id: string;
  ts: number;
}

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export class EmbeddedBus implements EventBus {
  readonly path: string;
  private readonly db: DatabaseSync;
  private readonly options: Required<
    Omit<EmbeddedBusOptions, 'observer' | 'deadLetterEncoder' | 'processedEvents' | 'synchronous'>
  >;
  readonly observer: BusObserver;
  /** @internal Publishes a dead letter on this bus (the delivery core calls it). */
  readonly deadLetter: (info: DeadLetterInfo) => Promise<void>;
  private readonly statements = new Map<string, StatementSync>();
  private readonly partitionChooser = new PartitionChooser();
  private readonly subscriptions = new Set<EmbeddedSubscription>();
  private pending: PendingPublish[] = [];
  private flushScheduled = false;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;
  private closePromise: Promise<void> | null = null;
  private readonly retentionTimer: NodeJS.Timeout | null;
  private processedStore: ProcessedEventStore | null = null;
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
    this.deadLetter = deadLetterPublisher(this, options.deadLetterEncoder ?? jsonDeadLetterEncoder);
    this.processedOptions = options.processedEvents ?? {};
    try {
      this.db = new DatabaseSync(options.path);
      this.db
        .exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${options.synchronous === 'FULL' ? 'FULL' : 'NORMAL'};
        PRAGMA busy_timeout=15000;`);
      this.db.exec(SCHEMA);
    } catch (error) {
      throw new BusError('store_unavailable', `cannot open the bus file: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const interval = this.options.retentionCheckIntervalMs;
    this.retentionTimer = interval > 0 ? setInterval(() => this.safeTrim(), interval).unref() : null;
  }

  // ---- SQLite helpers -------------------------------------------------------------------------------------------

  /** @internal */
  stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /** @internal Runs fn in one write transaction (BEGIN IMMEDIATE: the write lock is taken up front). */
  tx<T>(fn: () => T): T {
    this.assertOpen();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw error;
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new BusError('closed', 'the bus is closed');
  }

  /**
   * @internal Partitions of a topic, creating it (inside a transaction) when allowed. Read from the file each time,
   * never cached across calls: another process may have grown the topic, and a stale count would put a key on
   * another partition than theirs (breaking per-key order) and leave the new partitions unconsumed.
   */
  partitionsOf(topic: string, create: boolean): number {
    const row = this.stmt('SELECT partitions FROM bus_topics WHERE name = ?').get(topic) as
      { partitions: number } | undefined;
    if (row) return row.partitions;
    if (!create || !this.options.autoCreateTopics)
      throw new BusError('unknown_topic', `topic ${topic} does not exist`);
    const partitions = this.options.defaultPartitions;
    this.stmt(
      'INSERT OR IGNORE INTO bus_topics (name, partitions, retention_ms, cleanup_policy) VALUES (?, ?, NULL, ?)',
    ).run(topic, partitions, 'delete');
    for (let p = 0; p < partitions; p++)
      this.stmt('INSERT OR IGNORE INTO bus_partitions (topic, part, next_off) VALUES (?, ?, 0)').run(
        topic,
        p,
      );
    return this.partitionsOf(topic, false);
  }

  // ---- the port -------------------------------------------------------------------------------------------------

  async ensureTopics(topics: readonly TopicSpec[]): Promise<void> {
    for (const spec of topics) assertTopicSpec(spec);
    this.tx(() => {
      for (const spec of topics) {
        const existing = this.stmt('SELECT partitions FROM bus_topics WHERE name = ?').get(spec.name) as
          { partitions: number } | undefined;
        // Like Kafka: partitions only grow (shrinking would move keys and lose order).
        const partitions = Math.max(existing?.partitions ?? 0, spec.partitions);
        const retention = spec.retentionMs === undefined || spec.retentionMs === -1 ? null : spec.retentionMs;
        this.stmt(
          `INSERT INTO bus_topics (name, partitions, retention_ms, cleanup_policy) VALUES (?, ?, ?, ?)
           ON CONFLICT (name) DO UPDATE SET partitions = excluded.partitions, retention_ms = excluded.retention_ms,
           cleanup_policy = excluded.cleanup_policy`,
        ).run(spec.name, partitions, retention, spec.cleanupPolicy ?? 'delete');
        for (let p = 0; p < partitions; p++)
          this.stmt('INSERT OR IGNORE INTO bus_partitions (topic, part, next_off) VALUES (?, ?, 0)').run(
            spec.name,
            p,
          );
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
        this.flushing = new Promise((done) =>
          setImmediate(() => {
            this.flush();
            done();
          }),
        );
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    const topics = new Set<string>();
    try {
      const results = this.tx(() => {
        const now = Date.now();
        const next = new Map<string, { topic: string; partition: number; off: number }>();
        const counts = new Map<string, number>(); // one look-up per topic and batch
        const insert = this.stmt(
          'INSERT INTO bus_records (topic, part, off, rkey, val, headers, event_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        );
        const out = batch.map(({ records }) =>
          records.map((r) => {
            let partitions = counts.get(r.topic);
            if (partitions === undefined)
              counts.set(r.topic, (partitions = this.partitionsOf(r.topic, true)));
            const partition = this.partitionChooser.partitionOf(r.topic, r.key, partitions);
            const k = tpKey(r.topic, partition);
            let head = next.get(k);
            if (!head) {
              const row = this.stmt('SELECT next_off FROM bus_partitions WHERE topic = ? AND part = ?').get(
                r.topic,
                partition,
              ) as { next_off: number } | undefined;
              head = { topic: r.topic, partition, off: row?.next_off ?? 0 };
              next.set(k, head);
            }
            const off = head.off++;
            insert.run(r.topic, partition, off, r.key, r.value, JSON.stringify(r.headers), r.eventId, now);
            topics.add(r.topic);
            return { topic: r.topic, partition, offset: String(off), eventId: r.eventId };
          }),
        );
        const update = this.stmt(
          'INSERT INTO bus_partitions (topic, part, next_off) VALUES (?, ?, ?) ON CONFLICT (topic, part) DO UPDATE SET next_off = excluded.next_off',
        );
        for (const head of next.values()) update.run(head.topic, head.partition, head.off);
        return out;
      });
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (error) {
      const failure =
        error instanceof BusError
          ? error
          : new BusError('publish_failed', `publish failed: ${(error as Error).message}`, { cause: error });
      for (const p of batch) p.reject(failure);
      return;
    }
    for (const topic of topics) {
      let n = 0;
      for (const p of batch) for (const r of p.records) if (r.topic === topic) n++;
      this.observer.published?.(topic, n);
    }
    announcePublish(this.path, topics);
  }

  async subscribe(options: SubscribeOptions): Promise<Subscription> {
    this.assertOpen();
    const resolved = resolveSubscribeOptions(options);
    const dedupe = resolved.dedupe === true ? this.processedEvents() : resolved.dedupe || null;
    const sub = new EmbeddedSubscription(this, resolved, dedupe, this.options);
    this.subscriptions.add(sub);
    sub.start();
    return sub;
  }

  /** The processed-events store kept in the bus file (used by `dedupe: true`). */
  processedEvents(): ProcessedEventStore {
    this.assertOpen();
    return (this.processedStore ??= new ProcessedEventStore(this.db, this.processedOptions));
  }

  /** @internal */
  forget(sub: EmbeddedSubscription): void {
    this.subscriptions.delete(sub);
  }

  async health(): Promise<BusHealth> {
    if (this.closed) return { ready: false, detail: 'closed' };
    try {
      this.stmt('SELECT 1').get();
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
      const rows = this.stmt(
        `SELECT p.part AS part, p.next_off AS next_off, o.committed AS committed,
           (SELECT MIN(off) FROM bus_records r WHERE r.topic = p.topic AND r.part = p.part) AS first_off
         FROM bus_partitions p LEFT JOIN bus_offsets o ON o.grp = ? AND o.topic = p.topic AND o.part = p.part
         WHERE p.topic = ? ORDER BY p.part`,
      ).all(group, topic) as Array<{
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
  trimNow(now = Date.now()): number {
    this.assertOpen();
    const liveSince = Date.now() - this.options.sessionTimeoutMs;
    return this.tx(() => {
      let removed = 0;
      const topics = this.stmt('SELECT name, retention_ms, cleanup_policy FROM bus_topics').all() as Array<{
        name: string;
        retention_ms: number | null;
        cleanup_policy: string;
      }>;
      for (const t of topics) {
        const parts = this.stmt('SELECT part FROM bus_partitions WHERE topic = ?').all(t.name) as Array<{
          part: number;
        }>;
        for (const { part } of parts) {
          const guard = this.stmt(
            `SELECT MIN(committed) AS m FROM bus_offsets WHERE topic = ? AND part = ?
               AND grp IN (SELECT grp FROM bus_members WHERE heartbeat_at >= ?)`,
          ).get(t.name, part, liveSince) as { m: number | null };
          const below = guard.m ?? Number.MAX_SAFE_INTEGER;
          if (t.retention_ms !== null && t.cleanup_policy.includes('delete')) {
            removed += Number(
              this.stmt('DELETE FROM bus_records WHERE topic = ? AND part = ? AND ts < ? AND off < ?').run(
                t.name,
                part,
                now - t.retention_ms,
                below,
              ).changes,
            );
          }
          if (t.cleanup_policy.includes('compact')) {
            removed += Number(
              this.stmt(
                `DELETE FROM bus_records WHERE topic = ? AND part = ? AND rkey IS NOT NULL AND off < ? AND EXISTS (
                   SELECT 1 FROM bus_records n WHERE n.topic = bus_records.topic AND n.part = bus_records.part
                     AND n.rkey = bus_records.rkey AND n.off > bus_records.off)`,
              ).run(t.name, part, below).changes,
            );
          }
        }
      }
      return removed;
    });
  }

  private safeTrim(): void {
    try {
      this.trimNow();
    } catch {
      // A busy file or a closed bus: the next period tries again.
    }
  }

  /** Idempotent, also when called again while the first call is still draining. */
  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    await this.flushing;
    if (this.pending.length > 0) this.flush();
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.closed = true;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.processedStore?.close();
    this.statements.clear();
    this.db.close();
  }

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS bus_topics (
  name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, retention_ms INTEGER, cleanup_policy TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bus_partitions (
  topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL, PRIMARY KEY (topic, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_records (
  topic TEXT NOT NULL, part INTEGER NOT NULL, off INTEGER NOT NULL, rkey TEXT, val BLOB NOT NULL,
  headers TEXT NOT NULL, event_id TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (topic, part, off));
CREATE TABLE IF NOT EXISTS bus_offsets (
  grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, committed INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_members (
  grp TEXT NOT NULL, member TEXT NOT NULL, topics TEXT NOT NULL, heartbeat_at INTEGER NOT NULL,
  PRIMARY KEY (grp, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_leases (
  grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, member TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, part)) WITHOUT ROWID;
`;

type Timings = { pollIntervalMs: number; heartbeatIntervalMs: number; sessionTimeoutMs: number };

/** One member of a consumer group. */
class EmbeddedSubscription implements Subscription {
  readonly group: string;
  readonly topics: readonly string[];
  readonly memberId = randomUUID();
  lastError: string | null = null;
  private readonly bus: EmbeddedBus;
  private readonly options: ResolvedSubscribeOptions;
  private readonly timings: Timings;
  private readonly delivery: Omit<DeliveryContext, 'shouldStop'>;
  private owned = new Map<string, { topic: string; partition: number }>();
  private isPaused = false;
  private closing = false;
  private closePromise: Promise<void> | null = null;
  private loop: Promise<void> = Promise.resolve();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private unlisten: () => void = () => {};
  private dirty = true;
  private wakers = new Set<() => void>();
  private closeWaiters = new Set<() => void>();
  private nextRebalanceAt = 0;

  constructor(
    bus: EmbeddedBus,
    options: ResolvedSubscribeOptions,
    dedupe: ProcessedEvents | null,
    timings: Timings,
  ) {
    this.bus = bus;
    this.options = options;
    this.group = options.group;
    this.topics = [...new Set(options.topics)];
    this.timings = timings;
    this.delivery = {
      options,
      dedupe,
      observer: bus.observer,
      deadLetter: (info) => bus.deadLetter(info),
      sleep: (ms) => this.wait(ms, false),
    };
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** Joins the group and claims partitions synchronously, so a publish right after subscribe() is seen. */
  start(): void {
    const topicsJson = JSON.stringify(this.topics);
    this.bus.tx(() => {
      for (const topic of this.topics) {
        const partitions = this.bus.partitionsOf(topic, true);
        // The group's start position is fixed by its first member: the oldest record or the current end.
        for (let p = 0; p < partitions; p++) {
          this.bus
            .stmt(
              `INSERT OR IGNORE INTO bus_offsets (grp, topic, part, committed)
               SELECT ?, ?, ?, CASE WHEN ? THEN 0 ELSE COALESCE((SELECT next_off FROM bus_partitions WHERE topic = ? AND part = ?), 0) END`,
            )
            .run(this.group, topic, p, this.options.fromBeginning ? 1 : 0, topic, p);
        }
      }
      this.bus
        .stmt('INSERT OR REPLACE INTO bus_members (grp, member, topics, heartbeat_at) VALUES (?, ?, ?, ?)')
        .run(this.group, this.memberId, topicsJson, Date.now());
    });
    this.rebalance();
    this.unlisten = onPublish(this.bus.path, (topics) => {
      if (this.topics.some((t) => topics.has(t))) this.wake();
    });
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.timings.heartbeatIntervalMs);
    this.loop = this.run();
  }

  pause(): void {
    this.isPaused = true;
  }

  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    this.wake();
  }

  private wake(): void {
    this.dirty = true;
    for (const w of this.wakers) w();
  }

  /** Waits ms, or less when woken (a publish) unless onlyClose; always ends early on close. */
  private wait(ms: number, wakeOnPublish = true): Promise<void> {
    if (this.closing) return Promise.resolve();
    if (wakeOnPublish && this.dirty) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        this.closeWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (wakeOnPublish) this.wakers.add(done);
      else this.closeWaiters.add(done);
    });
  }

  private heartbeat(): void {
    if (this.closing || this.bus.isClosed) return;
    try {
      const now = Date.now();
      const mine = this.bus.tx(() => {
        this.bus
          .stmt('INSERT OR REPLACE INTO bus_members (grp, member, topics, heartbeat_at) VALUES (?, ?, ?, ?)')
          .run(this.group, this.memberId, JSON.stringify(this.topics), now);
        this.bus
          .stmt('UPDATE bus_leases SET expires_at = ? WHERE grp = ? AND member = ?')
          .run(now + this.timings.sessionTimeoutMs, this.group, this.memberId);
        return this.bus
          .stmt('SELECT topic, part FROM bus_leases WHERE grp = ? AND member = ?')
          .all(this.group, this.memberId) as Array<{ topic: string; part: number }>;
      });
      const still = new Set(mine.map((l) => tpKey(l.topic, l.part)));
      for (const k of [...this.owned.keys()]) if (!still.has(k)) this.owned.delete(k); // lost while we were silent
      this.lastError = null;
    } catch (error) {
      this.lastError = `heartbeat failed: ${(error as Error).message}`;
    }
  }

  /** Computes this member's share of the partitions, releases the rest, claims what is free. Between batches only. */
  private rebalance(): void {
    const now = Date.now();
    const { sessionTimeoutMs } = this.timings;
    this.owned = this.bus.tx(() => {
      const s = (sql: string) => this.bus.stmt(sql);
      s('INSERT OR REPLACE INTO bus_members (grp, member, topics, heartbeat_at) VALUES (?, ?, ?, ?)').run(
        this.group,
        this.memberId,
        JSON.stringify(this.topics),
        now,
      );
      s('DELETE FROM bus_members WHERE grp = ? AND heartbeat_at < ?').run(this.group, now - sessionTimeoutMs);
      s(
        'DELETE FROM bus_leases WHERE grp = ? AND (expires_at < ? OR member NOT IN (SELECT member FROM bus_members WHERE grp = ?))',
      ).run(this.group, now, this.group);
      const members = s('SELECT member, topics FROM bus_members WHERE grp = ? ORDER BY member').all(
        this.group,
      ) as Array<{ member: string; topics: string }>;
      const desired = new Map<string, { topic: string; partition: number }>();
      for (const topic of this.topics) {
        const subscribed = members.filter((m) => safeTopics(m.topics).includes(topic)).map((m) => m.member);
        const index = subscribed.indexOf(this.memberId);
        if (index < 0) continue;
        const partitions = this.bus.partitionsOf(topic, true);
        for (let p = 0; p < partitions; p++)
          if (p % subscribed.length === index) desired.set(tpKey(topic, p), { topic, partition: p });
      }
      const leases = s('SELECT topic, part, member FROM bus_leases WHERE grp = ?').all(this.group) as Array<{
        topic: string;
        part: number;
        member: string;
      }>;
      const holder = new Map(leases.map((l) => [tpKey(l.topic, l.part), l.member]));
      for (const l of leases) {
        if (l.member === this.memberId && !desired.has(tpKey(l.topic, l.part))) {
          s('DELETE FROM bus_leases WHERE grp = ? AND topic = ? AND part = ? AND member = ?').run(
            this.group,
            l.topic,
            l.part,
            this.memberId,
          );
        }
      }
      const owned = new Map<string, { topic: string; partition: number }>();
      for (const [k, tp] of desired) {
        const h = holder.get(k);
        if (h === undefined) {
          s('INSERT INTO bus_leases (grp, topic, part, member, expires_at) VALUES (?, ?, ?, ?, ?)').run(
            this.group,
            tp.topic,
            tp.partition,
            this.memberId,
            now + sessionTimeoutMs,
          );
        } else if (h !== this.memberId) {
          continue; // still held by its previous owner: it releases at its next rebalance, or its lease expires
        } else {
          s('UPDATE bus_leases SET expires_at = ? WHERE grp = ? AND topic = ? AND part = ?').run(
            now + sessionTimeoutMs,
            this.group,
            tp.topic,
            tp.partition,
          );
        }
        owned.set(k, tp);
      }
      return owned;
    });
    this.nextRebalanceAt = now + this.timings.heartbeatIntervalMs;
  }

  private async run(): Promise<void> {
    while (!this.closing) {
      try {
        if (Date.now() >= this.nextRebalanceAt) this.rebalance();
        if (this.isPaused || this.owned.size === 0) {
          await this.wait(Math.max(1, this.nextRebalanceAt - Date.now()));
          this.dirty = false;
          continue;
        }
        this.dirty = false;
        // allSettled, not all: a failing partition must not send the loop round again while another partition's
        // handler is still in flight (it would be delivered twice at once, and close() would not wait for it).
        const settled = await Promise.allSettled(
          [...this.owned.values()].map((tp) => this.processPartition(tp.topic, tp.partition)),
        );
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed) throw failed.reason;
        this.lastError = null;
        if (!settled.some((s) => s.status === 'fulfilled' && s.value)) {
          await this.wait(
            Math.max(1, Math.min(this.timings.pollIntervalMs, this.nextRebalanceAt - Date.now())),
          );
        }
      } catch (error) {
        if (this.bus.isClosed) return;
        this.lastError = error instanceof Error ? error.message : String(error);
        await this.wait(Math.min(1_000, this.timings.pollIntervalMs * 5), false);
      }
    }
  }

  private async processPartition(topic: string, partition: number): Promise<boolean> {
    const k = tpKey(topic, partition);
    const committed =
      (
        this.bus
          .stmt('SELECT committed FROM bus_offsets WHERE grp = ? AND topic = ? AND part = ?')
          .get(this.group, topic, partition) as { committed: number } | undefined
      )?.committed ?? 0;
    const rows = this.bus
      .stmt(
        'SELECT off, rkey, val, headers, event_id, ts FROM bus_records WHERE topic = ? AND part = ? AND off >= ? ORDER BY off LIMIT ?',
      )
      .all(topic, partition, committed, this.options.maxBatchSize) as unknown as RecordRow[];
    if (rows.length === 0) return false;
    const records: BusRecord[] = rows.map((r) => ({
      topic,
      partition,
      offset: String(r.off),
      key: r.rkey,
      value: Buffer.from(r.val.buffer, r.val.byteOffset, r.val.byteLength),
      headers: parseHeaders(r.headers),
      eventId: r.event_id,
      timestamp: r.ts,
      attempt: 1,
    }));
    const done = await deliver(
      { ...this.delivery, shouldStop: () => this.closing || this.isPaused || !this.owned.has(k) },
      records,
    );
    if (done > 0) this.commit(topic, partition, rows[done - 1]!.off + 1);
    return done > 0;
  }

  /** Commits only while this member still holds the partition's lease (a member that lost it must not move it). */
  private commit(topic: string, partition: number, next: number): void {
    if (this.bus.isClosed) return;
    const kept = this.bus.tx(() => {
      const lease = this.bus
        .stmt('SELECT member FROM bus_leases WHERE grp = ? AND topic = ? AND part = ?')
        .get(this.group, topic, partition) as { member: string } | undefined;
      if (lease?.member !== this.memberId) return false;
      this.bus
        .stmt(
          'INSERT INTO bus_offsets (grp, topic, part, committed) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, part) DO UPDATE SET committed = excluded.committed',
        )
        .run(this.group, topic, partition, next);
      return true;
    });
    if (!kept) this.owned.delete(tpKey(topic, partition));
  }

  close(): Promise<void> {
    return (this.closePromise ??= this.doClose());
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    for (const w of [...this.wakers, ...this.closeWaiters]) w();
    this.unlisten();
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.loop; // in-flight handlers finish and commit
    if (!this.bus.isClosed) {
      try {
        // Leave the group at once so the others take over without waiting for the session timeout.
        this.bus.tx(() => {
          this.bus.stmt('DELETE FROM bus_leases WHERE grp = ? AND member = ?').run(this.group, this.memberId);
          this.bus
            .stmt('DELETE FROM bus_members WHERE grp = ? AND member = ?')
            .run(this.group, this.memberId);
        });
      } catch {
        // The lease expires on its own.
      }
    }
    this.bus.forget(this);
  }
}

function safeTopics(json: string): string[] {
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

function parseHeaders(json: string): Headers {
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed && typeof parsed === 'object') {
      const out: Headers = {};
      for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') out[k] = v;
      return out;
    }
  } catch {
    // fall through: a damaged header column yields no headers, never a crash
  }
  return {};
}
