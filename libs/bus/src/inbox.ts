// The transactional inbox (SQLite): a handler whose effects live in a SQLite file of ours writes them, and the
// record's processed mark, in one transaction, so a replayed record (a crash before the bus committed its offset)
// is skipped exactly. On the embedded bus, when the effects live in the bus file itself, the group's offset past
// the record commits in that same transaction too (EmbeddedBus.inbox()).
import { DatabaseSync } from 'node:sqlite';
import { BusError, type BusRecord } from './port.js';
import { ProcessedEventStore, type ProcessedEventStoreOptions } from './processed-events.js';

export interface SqliteInboxOptions {
  /** Runs fn in one write transaction of the database (default: BEGIN IMMEDIATE … COMMIT on it). */
  transaction?: <T>(fn: () => T) => Promise<T>;
  /**
   * Inside the transaction, after the effects: commits the group's offset past the record. False means this
   * process no longer owns the record's partition: everything rolls back (BusError `partition_lost`).
   */
  commitOffset?: (group: string, record: BusRecord) => boolean;
  processedEvents?: ProcessedEventStoreOptions;
}

export class SqliteInbox {
  readonly db: DatabaseSync;
  private readonly processed: ProcessedEventStore;
  private readonly transaction: <T>(fn: () => T) => Promise<T>;
  private readonly commitOffset: SqliteInboxOptions['commitOffset'];

  /** Over a file (opened here), a DatabaseSync, or an existing ProcessedEventStore (sharing its database). */
  constructor(target: string | DatabaseSync | ProcessedEventStore, options: SqliteInboxOptions = {}) {
    this.processed =
      target instanceof ProcessedEventStore
        ? target
        : new ProcessedEventStore(target, options.processedEvents);
    this.db = this.processed.db;
    this.transaction = options.transaction ?? ((fn) => Promise.resolve(immediate(this.db, fn)));
    this.commitOffset = options.commitOffset;
  }

  /**
   * Runs `effects` (synchronous, on this database) and marks `record` processed by `group`, in one transaction.
   * Resolves false, running nothing, when the group already processed the record's event id.
   */
  run(group: string, record: BusRecord, effects: (db: DatabaseSync) => void): Promise<boolean> {
    return this.transaction(() => {
      if (this.processed.seen(group, [record.eventId]).size > 0) return false;
      effects(this.db);
      this.processed.markProcessed(group, [record.eventId]);
      if (this.commitOffset && !this.commitOffset(group, record))
        throw new BusError(
          'partition_lost',
          `partition ${record.partition} of ${record.topic} is no longer ours`,
        );
      return true;
    });
  }

  close(): void {
    this.processed.close();
  }
}

function immediate<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}
