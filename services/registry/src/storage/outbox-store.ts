import type { Kysely } from 'kysely';
import { toOutboxEvent } from './rows.js';
import { type OutboxEvent } from './records.js';
import type { RegistryDatabase } from './schema.js';

/** The outbox: events written in the transaction that caused them, published on the bus after it commits. */
export class OutboxStore {
  constructor(private readonly db: Kysely<RegistryDatabase>) {}

  // ── outbox (events published on the bus after the transaction that caused them commits) ────────────────────
  async enqueueEvent(e: Omit<OutboxEvent, 'id'>): Promise<void> {
    await this.db
      .insertInto('outbox')
      .values({
        topic: e.topic,
        record_key: e.key,
        tenant_id: e.tenantId,
        event_id: e.eventId,
        payload: e.payload,
        created_at: e.createdAt,
        published_at: null,
      })
      .execute();
  }

  async pendingEvents(limit: number): Promise<OutboxEvent[]> {
    const rows = await this.db
      .selectFrom('outbox')
      .selectAll()
      .where('published_at', 'is', null)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toOutboxEvent);
  }

  async markPublished(ids: readonly number[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .updateTable('outbox')
      .set({ published_at: now })
      .where('id', 'in', [...ids])
      .execute();
  }

  async listEvents(filter: { topic?: string; key?: string; limit?: number } = {}): Promise<OutboxEvent[]> {
    let query = this.db.selectFrom('outbox').selectAll();
    if (filter.topic !== undefined) query = query.where('topic', '=', filter.topic);
    if (filter.key !== undefined) query = query.where('record_key', '=', filter.key);
    const rows = await query
      .orderBy('id')
      .limit(filter.limit ?? 1000)
      .execute();
    return rows.map(toOutboxEvent);
  }
}
