// The bus file: one SQLite database (node:sqlite, WAL) that every process using the embedded bus opens. It owns the
// schema, the prepared-statement cache, the write transaction, and the topic rows (partition counts), which the
// bus, its group members and retention all read through here.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { BusError, type Headers } from '../port.js';

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

/** Map key of one partition of a topic. */
export const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

export interface TopicDefaults {
  /** Partitions of a topic created on first use. */
  defaultPartitions: number;
  /** Create an unknown topic on first use; false makes it an error. */
  autoCreateTopics: boolean;
}

export class BusStore {
  readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private readonly topicDefaults: TopicDefaults;
  private open = true;

  /** Opens (creating when absent) the bus file; failures → BusError `store_unavailable`. */
  constructor(path: string, synchronous: 'NORMAL' | 'FULL' | undefined, topicDefaults: TopicDefaults) {
    this.topicDefaults = topicDefaults;
    try {
      this.db = new DatabaseSync(path);
      this.db.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=${synchronous === 'FULL' ? 'FULL' : 'NORMAL'};
        PRAGMA busy_timeout=15000;`);
      this.db.exec(SCHEMA);
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

  /** Runs fn in one write transaction (BEGIN IMMEDIATE: the write lock is taken up front). */
  tx<T>(fn: () => T): T {
    if (!this.open) throw new BusError('closed', 'the bus is closed');
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

  close(): void {
    this.open = false;
    this.statements.clear();
    this.db.close();
  }
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
