import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely, Transaction } from 'kysely';
import { CatalogStore } from './catalog-store.js';
import { DeviceStore } from './device-store.js';
import type { DatabaseKind } from '@edgefl/service-kit';
import { OutboxStore } from './outbox-store.js';
import { ReleaseStore } from './release-store.js';
import type { RegistryDatabase } from './schema.js';

/** The transaction a root store's calls join while `fn` of its transaction() runs (and everything it awaits). */
interface AmbientTransaction {
  root: RegistryStore;
  trx: Kysely<RegistryDatabase>;
  open: boolean;
}
const ambient = new AsyncLocalStorage<AmbientTransaction>();

/**
 * The registry's one repository layer over Kysely: the same code and migrations for SQLite and PostgreSQL, by
 * area — `catalog` (tenants, models, versions, deltas), `devices`, `releases` (transitions, per-device progress,
 * health windows) and the `outbox`. `transaction(fn)` runs `fn` with a store whose areas are all bound to one
 * transaction (nested calls join the outer one); while fn runs, calls on the root store's areas (from the
 * services fn calls, which hold the root store) join it too.
 */
export class RegistryStore {
  readonly catalog: CatalogStore;
  readonly devices: DeviceStore;
  readonly releases: ReleaseStore;
  readonly outbox: OutboxStore;

  constructor(
    readonly db: Kysely<RegistryDatabase>,
    readonly kind: DatabaseKind,
    private readonly inTransaction = false,
  ) {
    const areas = inTransaction ? db : this.joiningAmbient(db);
    this.catalog = new CatalogStore(areas);
    this.devices = new DeviceStore(areas);
    this.releases = new ReleaseStore(areas);
    this.outbox = new OutboxStore(areas);
  }

  /** The root query builder, or the ambient transaction's while one of this store runs (see transaction). */
  private joiningAmbient(root: Kysely<RegistryDatabase>): Kysely<RegistryDatabase> {
    return new Proxy(root, {
      get: (target, property) => {
        const current = ambient.getStore();
        const db = current?.open && current.root === this ? current.trx : target;
        const value: unknown = Reflect.get(db, property, db);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(db) : value;
      },
    });
  }

  async transaction<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const current = ambient.getStore();
    if (current?.open && current.root === this) return fn(new RegistryStore(current.trx, this.kind, true));
    return this.db.transaction().execute(async (trx: Transaction<RegistryDatabase>) => {
      const scope: AmbientTransaction = { root: this, trx, open: true };
      try {
        return await ambient.run(scope, () => fn(new RegistryStore(trx, this.kind, true)));
      } finally {
        scope.open = false;
      }
    });
  }

  /** Runs fn outside any ambient transaction: background work started inside one (a relay drain) must not join it. */
  static outsideTransaction<T>(fn: () => T): T {
    return ambient.exit(fn);
  }

  /**
   * The transactional inbox: records `eventId` as processed by `group` and runs `effects` in one transaction, so a
   * replayed event (a crash before the bus committed its offset) is skipped exactly. Resolves false, running
   * nothing, when the group already processed it; a failing `effects` rolls the mark back with them.
   */
  async inbox(
    group: string,
    eventId: string,
    effects: (tx: RegistryStore) => Promise<void>,
  ): Promise<boolean> {
    return this.transaction(async (tx) => {
      const inserted = await tx.db
        .insertInto('inbox')
        .values({ grp: group, event_id: eventId, processed_at: Date.now() })
        .onConflict((oc) => oc.columns(['grp', 'event_id']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      await effects(tx);
      return true;
    });
  }
}
