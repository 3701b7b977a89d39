import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { BusError, type ProcessedEvents } from './port.js';

export interface ProcessedEventStoreOptions {
  /** Forget an event id after this long (default 7 days). */
  maxAgeMs?: number;
  /** Keep at most this many ids per group, newest first (default 1,000,000). */
  maxEntriesPerGroup?: number;
  /** Prune every this many marks (default 10,000). */
  pruneEvery?: number;
}

/**
 * Which event ids each consumer group has processed, in SQLite (a file of its own, or the embedded bus file), so a
 * replayed event is acknowledged without running the handler again, with either adapter and across restarts.
 * Bounded by age and by count per group.
 */
export class ProcessedEventStore implements ProcessedEvents {
  readonly db: DatabaseSync;
  private readonly ownsDb: boolean;
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly pruneEvery: number;
  private sinceLastPrune = 0;
  // Prepared once: seen/markProcessed run for every delivered batch.
  private readonly seenStmt: StatementSync;
  private readonly markStmt: StatementSync;
  private closed = false;

  constructor(target: string | DatabaseSync, options: ProcessedEventStoreOptions = {}) {
    this.ownsDb = typeof target === 'string';
    try {
      this.db = typeof target === 'string' ? new DatabaseSync(target) : target;
      if (this.ownsDb)
        this.db.exec('PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;');
      this.db.exec(`CREATE TABLE IF NOT EXISTS bus_processed_events (
        grp TEXT NOT NULL, event_id TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (grp, event_id)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS bus_processed_events_at ON bus_processed_events (grp, at);`);
    } catch (error) {
      throw new BusError(
        'store_unavailable',
        `cannot open the processed-events store: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.maxAgeMs = options.maxAgeMs ?? 7 * 24 * 3600_000;
    this.maxEntries = options.maxEntriesPerGroup ?? 1_000_000;
    this.pruneEvery = options.pruneEvery ?? 10_000;
    this.seenStmt = this.db.prepare(
      'SELECT event_id FROM bus_processed_events WHERE grp = ? AND event_id IN (SELECT value FROM json_each(?))',
    );
    this.markStmt = this.db.prepare(
      'INSERT OR REPLACE INTO bus_processed_events (grp, event_id, at) SELECT ?, value, ? FROM json_each(?)',
    );
  }

  seen(group: string, eventIds: readonly string[]): Set<string> {
    const found = new Set<string>();
    if (eventIds.length === 0) return found;
    const unique = [...new Set(eventIds)];
    // json_each keeps this one statement whatever the batch size.
    const rows = this.seenStmt.all(group, JSON.stringify(unique)) as Array<{ event_id: string }>;
    for (const row of rows) found.add(row.event_id);
    return found;
  }

  markProcessed(group: string, eventIds: readonly string[]): void {
    if (eventIds.length === 0) return;
    this.markStmt.run(group, Date.now(), JSON.stringify(eventIds));
    this.sinceLastPrune += eventIds.length;
    if (this.sinceLastPrune >= this.pruneEvery) this.prune();
  }

  /** Drops ids older than maxAgeMs and, per group, all but the newest maxEntriesPerGroup. */
  prune(now = Date.now()): void {
    this.sinceLastPrune = 0;
    this.db.prepare('DELETE FROM bus_processed_events WHERE at < ?').run(now - this.maxAgeMs);
    const groups = this.db
      .prepare('SELECT grp, COUNT(*) AS n FROM bus_processed_events GROUP BY grp')
      .all() as Array<{ grp: string; n: number }>;
    for (const { grp, n } of groups) {
      if (n <= this.maxEntries) continue;
      this.db
        .prepare(
          `DELETE FROM bus_processed_events WHERE grp = ? AND event_id IN (
             SELECT event_id FROM bus_processed_events WHERE grp = ? ORDER BY at ASC LIMIT ?)`,
        )
        .run(grp, grp, n - this.maxEntries);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDb) this.db.close();
  }
}
