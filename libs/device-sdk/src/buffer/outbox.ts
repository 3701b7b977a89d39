import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';

/**
 * What the buffer holds, in sync priority (lower first). OTA statuses and FL updates go first, then telemetry,
 * then inference logs. Hard samples (low-confidence inputs, kept only when the tenant's privacy policy allows) never
 * leave the device through the buffer: they stay for local training and count against the disk budget.
 */
export const RECORD_KINDS = ['ota-status', 'fl-update', 'telemetry', 'inference-log', 'hard-sample'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

const PRIORITY: Record<RecordKind, number> = {
  'ota-status': 0,
  'fl-update': 0,
  telemetry: 1,
  'inference-log': 2,
  'hard-sample': 3,
};
/** Eviction order when the budget is full: first kind first, oldest first; OTA statuses are never evicted. */
export const EVICTION_ORDER: readonly RecordKind[] = [
  'hard-sample',
  'inference-log',
  'telemetry',
  'fl-update',
];

export interface OutboxRecord {
  id: number;
  kind: RecordKind;
  topic: string | null;
  payload: Uint8Array;
  createdAt: number;
}

export interface OutboxOptions {
  /** Disk budget for payloads (bytes). Default 16 MiB. */
  budgetBytes?: number;
  now?: () => number;
}

export interface OutboxStats {
  pending: Record<RecordKind, number>;
  pendingBytes: number;
  /** Records removed to stay within the budget (or refused because only unsent OTA statuses were left), by kind. */
  evicted: Record<RecordKind, number>;
  /** Records dropped because their deadline passed before they could be sent (FL updates), by kind. */
  expired: Record<RecordKind, number>;
  /** Records sent and acknowledged by the broker, by kind. */
  sent: Record<RecordKind, number>;
}

const zero = (): Record<RecordKind, number> =>
  Object.fromEntries(RECORD_KINDS.map((k) => [k, 0])) as Record<RecordKind, number>;

/**
 * The offline buffer: a SQLite file (node:sqlite, WAL, synchronous=FULL) of records waiting for the broker's
 * acknowledgement. A record is deleted only by markSent (after its QoS 1 PUBACK), so nothing is lost across a
 * restart or a long offline spell within the budget; what the budget forces out is counted (also across restarts).
 */
export class Outbox {
  readonly #db: DatabaseSync;
  readonly #budget: number;
  readonly #now: () => number;
  readonly #insert: StatementSync;
  readonly #bytes: StatementSync;
  readonly #oldestOf: StatementSync;
  readonly #delete: StatementSync;
  readonly #count: StatementSync;
  readonly #bump: StatementSync;
  #listeners: Array<(kind: RecordKind) => void> = [];

  constructor(path: string, options: OutboxOptions = {}) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        priority INTEGER NOT NULL,
        topic TEXT,
        payload BLOB NOT NULL,
        bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER
      );
      CREATE INDEX IF NOT EXISTS outbox_order ON outbox (priority, id);
      CREATE INDEX IF NOT EXISTS outbox_kind ON outbox (kind, id);
      CREATE TABLE IF NOT EXISTS counters (name TEXT NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (name, kind));
    `);
    this.#budget = options.budgetBytes ?? 16 << 20;
    this.#now = options.now ?? Date.now;
    this.#insert = this.#db.prepare(
      'INSERT INTO outbox (kind, priority, topic, payload, bytes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.#bytes = this.#db.prepare('SELECT COALESCE(SUM(bytes), 0) AS n FROM outbox');
    this.#oldestOf = this.#db.prepare('SELECT id, bytes FROM outbox WHERE kind = ? ORDER BY id LIMIT 1');
    this.#delete = this.#db.prepare('DELETE FROM outbox WHERE id = ?');
    this.#count = this.#db.prepare('SELECT kind, COUNT(*) AS n FROM outbox GROUP BY kind');
    this.#bump = this.#db.prepare(
      'INSERT INTO counters (name, kind, n) VALUES (?, ?, ?) ON CONFLICT (name, kind) DO UPDATE SET n = n + excluded.n',
    );
  }

  /** Called after each enqueue (the event-driven sync strategy listens). */
  onEnqueue(listener: (kind: RecordKind) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Stores a record (durable when this returns), evicting per EVICTION_ORDER to stay within the budget. Returns the
   * id, or null when the record itself had to be refused (the budget is full of unsent OTA statuses).
   */
  enqueue(
    kind: RecordKind,
    topic: string | null,
    payload: Uint8Array,
    options: { expiresAt?: number } = {},
  ): number | null {
    this.#db.exec('SAVEPOINT one');
    let id: number | null;
    try {
      id = this.#enqueueOne(kind, topic, payload, options.expiresAt);
      this.#db.exec('RELEASE one');
    } catch (error) {
      this.#db.exec('ROLLBACK TO one');
      this.#db.exec('RELEASE one');
      throw error;
    }
    if (id !== null) for (const l of this.#listeners) l(kind);
    return id;
  }

  /** Inside a transaction: evicts per EVICTION_ORDER to make room, then inserts (or refuses and counts). */
  #enqueueOne(
    kind: RecordKind,
    topic: string | null,
    payload: Uint8Array,
    expiresAt: number | undefined,
  ): number | null {
    const size = payload.byteLength;
    let used = Number((this.#bytes.get() as { n: number }).n);
    for (const victim of EVICTION_ORDER) {
      if (used + size <= this.#budget) break;
      // never evict a more important record to make room for a less important one
      if (!(kind === 'ota-status' || victim === kind || PRIORITY[victim] > PRIORITY[kind])) continue;
      for (;;) {
        if (used + size <= this.#budget) break;
        const row = this.#oldestOf.get(victim) as { id: number; bytes: number } | undefined;
        if (!row) break;
        this.#delete.run(row.id);
        used -= row.bytes;
        this.#bump.run('evicted', victim, 1);
      }
    }
    if (used + size <= this.#budget || kind === 'ota-status') {
      const result = this.#insert.run(
        kind,
        PRIORITY[kind],
        topic,
        payload,
        size,
        this.#now(),
        expiresAt ?? null,
      );
      return Number(result.lastInsertRowid);
    }
    this.#bump.run('evicted', kind, 1);
    return null;
  }

  /** Stores several records in one transaction (batched inference logs); returns how many were kept. */
  enqueueMany(
    kind: RecordKind,
    records: ReadonlyArray<{ topic: string | null; payload: Uint8Array }>,
  ): number {
    let kept = 0;
    this.#db.exec('SAVEPOINT many');
    try {
      for (const r of records) if (this.#enqueueOne(kind, r.topic, r.payload, undefined) !== null) kept++;
      this.#db.exec('RELEASE many');
    } catch (error) {
      this.#db.exec('ROLLBACK TO many');
      this.#db.exec('RELEASE many');
      throw error;
    }
    if (kept > 0) for (const l of this.#listeners) l(kind);
    return kept;
  }

  /**
   * The next records to send: by priority then age, at most `maxBytes` in total (always at least one record) and
   * `maxRecords`; only kinds in `kinds`, and only records with a topic. Expired records are dropped and counted.
   */
  nextBatch(
    maxBytes: number,
    maxRecords: number,
    kinds: readonly RecordKind[] = RECORD_KINDS,
  ): OutboxRecord[] {
    const now = this.#now();
    const expired = this.#db
      .prepare('SELECT id, kind FROM outbox WHERE expires_at IS NOT NULL AND expires_at <= ?')
      .all(now) as Array<{ id: number; kind: RecordKind }>;
    for (const row of expired) {
      this.#delete.run(row.id);
      this.#bump.run('expired', row.kind, 1);
    }
    const wanted = kinds.filter((k) => k !== 'hard-sample');
    if (wanted.length === 0) return [];
    const rows = this.#db
      .prepare(
        `SELECT id, kind, topic, payload, bytes, created_at FROM outbox WHERE topic IS NOT NULL AND kind IN (${wanted.map(() => '?').join(',')}) ORDER BY priority, id LIMIT ?`,
      )
      .all(...wanted, maxRecords) as Array<{
      id: number;
      kind: RecordKind;
      topic: string;
      payload: Uint8Array;
      bytes: number;
      created_at: number;
    }>;
    const out: OutboxRecord[] = [];
    let bytes = 0;
    for (const r of rows) {
      if (out.length > 0 && bytes + r.bytes > maxBytes) break;
      bytes += r.bytes;
      out.push({ id: r.id, kind: r.kind, topic: r.topic, payload: r.payload, createdAt: r.created_at });
    }
    return out;
  }

  /** Deletes records the broker acknowledged. */
  markSent(records: readonly Pick<OutboxRecord, 'id' | 'kind'>[]): void {
    if (records.length === 0) return;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      for (const r of records) {
        if (Number(this.#delete.run(r.id).changes) > 0) this.#bump.run('sent', r.kind, 1);
      }
      this.#db.exec('COMMIT');
    } catch (error) {
      this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** Records of one kind, oldest first (hard samples for local training, tests). */
  list(kind: RecordKind, limit = 1000): OutboxRecord[] {
    return (
      this.#db
        .prepare('SELECT id, kind, topic, payload, created_at FROM outbox WHERE kind = ? ORDER BY id LIMIT ?')
        .all(kind, limit) as Array<{
        id: number;
        kind: RecordKind;
        topic: string | null;
        payload: Uint8Array;
        created_at: number;
      }>
    ).map((r) => ({ id: r.id, kind: r.kind, topic: r.topic, payload: r.payload, createdAt: r.created_at }));
  }

  stats(): OutboxStats {
    const pending = zero();
    for (const row of this.#count.all() as Array<{ kind: RecordKind; n: number }>)
      pending[row.kind] = Number(row.n);
    const counters = { evicted: zero(), expired: zero(), sent: zero() };
    for (const row of this.#db.prepare('SELECT name, kind, n FROM counters').all() as Array<{
      name: keyof typeof counters;
      kind: RecordKind;
      n: number;
    }>) {
      if (counters[row.name]) counters[row.name][row.kind] = Number(row.n);
    }
    return { pending, pendingBytes: Number((this.#bytes.get() as { n: number }).n), ...counters };
  }

  close(): void {
    this.#db.close();
  }
}
