// Retention of the embedded log: what a trim may delete, and what it must keep for the groups still reading.
import type { BusStore } from './store.js';

/**
 * Deletes records older than their topic's retention (`now` dates the records), except records an active group
 * (one with a member whose heartbeat is at or after `liveSince`) has not committed yet; compacts `compact` topics
 * (keeps the newest record per key, below the same guard). Returns the number of records removed.
 */
export function trimRecords(store: BusStore, now: number, liveSince: number): Promise<number> {
  return store.tx(() => {
    let removed = 0;
    const topics = store.stmt('SELECT name, retention_ms, cleanup_policy FROM bus_topics').all() as Array<{
      name: string;
      retention_ms: number | null;
      cleanup_policy: string;
    }>;
    for (const t of topics) {
      const parts = store.stmt('SELECT part FROM bus_partitions WHERE topic = ?').all(t.name) as Array<{
        part: number;
      }>;
      for (const { part } of parts) {
        const guard = store
          .stmt(
            `SELECT MIN(committed) AS m FROM bus_offsets WHERE topic = ? AND part = ?
               AND grp IN (SELECT grp FROM bus_members WHERE heartbeat_at >= ?)`,
          )
          .get(t.name, part, liveSince) as { m: number | null };
        const below = guard.m ?? Number.MAX_SAFE_INTEGER;
        if (t.retention_ms !== null && t.cleanup_policy.includes('delete')) {
          removed += Number(
            store
              .stmt('DELETE FROM bus_records WHERE topic = ? AND part = ? AND ts < ? AND off < ?')
              .run(t.name, part, now - t.retention_ms, below).changes,
          );
        }
        if (t.cleanup_policy.includes('compact')) {
          removed += Number(
            store
              .stmt(
                `DELETE FROM bus_records WHERE topic = ? AND part = ? AND rkey IS NOT NULL AND off < ? AND EXISTS (
                   SELECT 1 FROM bus_records n WHERE n.topic = bus_records.topic AND n.part = bus_records.part
                     AND n.rkey = bus_records.rkey AND n.off > bus_records.off)`,
              )
              .run(t.name, part, below).changes,
          );
        }
      }
    }
    return removed;
  });
}
