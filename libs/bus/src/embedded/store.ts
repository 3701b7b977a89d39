// The bus file: one SQLite database (node:sqlite, WAL) that every process using the embedded bus opens. It owns the
// schema, the prepared-statement cache, the write transaction, and the topic rows (partition counts), which the
// bus, its group members and retention all read through here.
import { hostname } from 'node:os';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { setTimeout as delay } from 'node:timers/promises';
import type { PartitionChooser } from '../partitioner.js';
import { BusError, type BusObserver, type Headers, type PublishedRecord } from '../port.js';
import type { NormalisedRecord } from '../validation.js';

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
  starts INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (grp, topic, part)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_members (
  grp TEXT NOT NULL, member TEXT NOT NULL, topics TEXT NOT NULL, heartbeat_at INTEGER NOT NULL,
  PRIMARY KEY (grp, member)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS bus_member_processes (
  grp TEXT NOT NULL, member TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
  PRIMARY KEY (grp, member)) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS bus_leases (
  grp TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, member TEXT NOT NULL, expires_at INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, part)) WITHOUT ROWID;
`;

/** Map key of one partition of a topic. */
export const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export interface TopicDefaults {
  /** Partitions of a topic created on first use. */
  defaultPartitions: number;
  /** Create an unknown topic on first use; false makes it an error. */
  autoCreateTopics: boolean;
}

interface QueuedTx {
  fn: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/** How long one process may wait for the bus file's write lock (another process holds it). */
export interface LockPolicy {
  /** Longest synchronous wait for the lock at one try (SQLite's busy_timeout); the event loop is blocked that long. */
  sliceMs: number;
  /** Give up (BusError `busy`) after waiting this long in all; keep it below the session timeout. */
  maxWaitMs: number;
}

/** This machine's name, stored with each member's pid: a pid means something only on its own host. */
export const HOST = hostname();

export class BusStore {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private readonly topicDefaults: TopicDefaults;
  private readonly lock: LockPolicy;
  private readonly observer: BusObserver;
  private open = true;
  private readonly queue: QueuedTx[] = [];
  private draining = false;

  /** Opens (creating when absent) the bus file; failures → BusError `store_unavailable`. */
  constructor(
    path: string,
    synchronous: 'NORMAL' | 'FULL' | undefined,
    topicDefaults: TopicDefaults,
    lock: LockPolicy = { sliceMs: 20, maxWaitMs: 5_000 },
    observer: BusObserver = {},
  ) {
    this.topicDefaults = topicDefaults;
    this.lock = lock;
    this.observer = observer;
    try {
      this.db = new DatabaseSync(path);
      // busy_timeout is one short slice: a longer wait is retried asynchronously (tx), so a process stopped while it
      // holds the write lock never freezes the others' event loops.
      this.db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous === 'FULL' ? 'FULL' : 'NORMAL'};
        PRAGMA busy_timeout=${Math.max(0, Math.round(lock.sliceMs))};`);
      this.db.exec(SCHEMA);
      addStartsColumn(this.db);
    } catch (error) {
      throw new BusError('store_unavailable', `cannot open the bus file: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** A prepared statement, prepared once per SQL text. */
  stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  /**
   * Runs fn (synchronous) in a write transaction (BEGIN IMMEDIATE: the write lock is taken up front). Calls made in
   * the same turn of the event loop share one transaction, each in a savepoint of its own (a throwing fn undoes only
   * its writes and rejects only its call): commits of several partitions cost one. While another process holds the
   * lock, each try waits at most one slice synchronously, then the wait goes on asynchronously with backoff
   * (counted by the observer's lockWait) until maxWaitMs, then BusError `busy`.
   */
  tx<T>(fn: () => T, options: { now?: boolean } = {}): Promise<T> {
    if (!this.open) return Promise.reject(new BusError('closed', 'the bus is closed'));
    return new Promise<T>((resolve, reject) => {
      const item = { fn, resolve: resolve as (value: unknown) => void, reject };
      // `now` (a flush that already grouped its publishes): run at once when nothing waits and the lock is free.
      if (options.now && this.queue.length === 0 && !this.draining && this.tryLock())
        return this.runQueued([item]);
      this.queue.push(item);
      if (this.queue.length === 1 && !this.draining) setImmediate(() => void this.drain());
    });
  }

  /** One BEGIN IMMEDIATE try (one lock slice at most); false when another process holds the lock. */
  private tryLock(): boolean {
    try {
      this.db.exec('BEGIN IMMEDIATE');
      return true;
    } catch (error) {
      if (!isBusy(error)) throw error;
      this.observer.lockWait?.();
      return false;
    }
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        try {
          await this.lockFile();
        } catch (error) {
          for (const item of this.queue.splice(0)) item.reject(error);
          return;
        }
        this.runQueued(this.queue.splice(0));
      }
    } finally {
      this.draining = false;
    }
  }

  /** BEGIN IMMEDIATE, retried asynchronously while another process holds the lock. */
  private async lockFile(): Promise<void> {
    const started = Date.now();
    for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
      if (!this.open) throw new BusError('closed', 'the bus is closed');
      try {
        this.db.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        if (!isBusy(error)) throw error;
        this.observer.lockWait?.();
        if (Date.now() - started >= this.lock.maxWaitMs)
          throw new BusError(
            'busy',
            `the bus file stayed locked by another process for ${this.lock.maxWaitMs} ms`,
            {
              cause: error,
            },
          );
        await delay(pause + Math.random() * pause);
      }
    }
  }

  /** Inside BEGIN IMMEDIATE: each fn in a savepoint, then one COMMIT; settles each call after it. */
  private runQueued(batch: QueuedTx[]): void {
    if (batch.length === 1) return this.runAlone(batch[0]!);
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    for (const item of batch) {
      this.db.exec('SAVEPOINT bus_tx');
      try {
        const value = item.fn();
        this.db.exec('RELEASE bus_tx');
        outcomes.push({ ok: true, value });
      } catch (error) {
        this.db.exec('ROLLBACK TO bus_tx');
        this.db.exec('RELEASE bus_tx');
        outcomes.push({ ok: false, value: error });
      }
    }
    try {
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) =>
      outcomes[i]!.ok ? item.resolve(outcomes[i]!.value) : item.reject(outcomes[i]!.value),
    );
  }

  /** One call alone needs no savepoint (most commits within a delivery): a throw rolls the transaction back. */
  private runAlone(item: QueuedTx): void {
    let value: unknown;
    try {
      value = item.fn();
      this.db.exec('COMMIT');
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      item.reject(error);
      return;
    }
    item.resolve(value);
  }

  /**
   * Partitions of a topic, creating it (inside a transaction) when allowed. Read from the file each time, never
   * cached across calls: another process may have grown the topic, and a stale count would put a key on another
   * partition than theirs (breaking per-key order) and leave the new partitions unconsumed.
   */
  partitionsOf(topic: string, create: boolean): number {
    const row = this.stmt('SELECT partitions FROM bus_topics WHERE name = ?').get(topic) as
      { partitions: number } | undefined;
    if (row) return row.partitions;
    if (!create || !this.topicDefaults.autoCreateTopics)
      throw new BusError('unknown_topic', `topic ${topic} does not exist`);
    const partitions = this.topicDefaults.defaultPartitions;
    this.stmt(
      'INSERT OR IGNORE INTO bus_topics (name, partitions, retention_ms, cleanup_policy) VALUES (?, ?, NULL, ?)',
    ).run(topic, partitions, 'delete');
    this.addPartitionRows(topic, partitions);
    return this.partitionsOf(topic, false);
  }

  /** Makes sure partitions 0 … partitions−1 of a topic have their row (next offset 0 when new). */
  addPartitionRows(topic: string, partitions: number): void {
    for (let p = 0; p < partitions; p++)
      this.stmt('INSERT OR IGNORE INTO bus_partitions (topic, part, next_off) VALUES (?, ?, 0)').run(
        topic,
        p,
      );
  }

  /**
   * Appends normalised records to their partitions (inside a transaction): the partition from the key with Kafka's
   * rule, the next offsets of each partition. Returns where each landed, in order.
   */
  appendRecords(
    chooser: PartitionChooser,
    records: readonly NormalisedRecord[],
    now: number,
  ): PublishedRecord[] {
    const next = new Map<string, { topic: string; partition: number; off: number }>();
    const counts = new Map<string, number>(); // one look-up per topic and call
    const insert = this.stmt(
      'INSERT INTO bus_records (topic, part, off, rkey, val, headers, event_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const out = records.map((r) => {
      let partitions = counts.get(r.topic);
      if (partitions === undefined) counts.set(r.topic, (partitions = this.partitionsOf(r.topic, true)));
      const partition = chooser.partitionOf(r.topic, r.key, partitions);
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
      return { topic: r.topic, partition, offset: String(off), eventId: r.eventId };
    });
    const update = this.stmt(
      'INSERT INTO bus_partitions (topic, part, next_off) VALUES (?, ?, ?) ON CONFLICT (topic, part) DO UPDATE SET next_off = excluded.next_off',
    );
    for (const head of next.values()) update.run(head.topic, head.partition, head.off);
    return out;
  }

  close(): void {
    this.open = false;
    this.statements.clear();
    this.db.close();
  }
}

/**
 * A bus file made before deliveries were counted has no `bus_offsets.starts` (deliveries started at the committed
 * offset that never ended): add it. Another process may add it at the same time; that is fine.
 */
function addStartsColumn(db: DatabaseSync): void {
  const has = () =>
    (db.prepare('PRAGMA table_info(bus_offsets)').all() as Array<{ name: string }>).some(
      (c) => c.name === 'starts',
    );
  if (has()) return;
  try {
    db.exec('ALTER TABLE bus_offsets ADD COLUMN starts INTEGER NOT NULL DEFAULT 0');
  } catch (error) {
    if (!has()) throw error;
  }
}

/** SQLITE_BUSY / SQLITE_LOCKED: another connection holds the lock. */
function isBusy(error: unknown): boolean {
  const e = error as { errcode?: unknown; message?: unknown } | null;
  return (
    e?.errcode === 5 ||
    e?.errcode === 6 ||
    (typeof e?.message === 'string' && /database is locked/.test(e.message))
  );
}

/** The stored header column back to headers; a damaged column yields no headers, never a crash. */
export function parseHeaders(json: string): Headers {
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
