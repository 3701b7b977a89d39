import type { Kysely, Transaction } from 'kysely';
import { CatalogStore } from './catalog-store.js';
import { DeviceStore } from './device-store.js';
import type { DatabaseKind } from './migrations.js';
import { OutboxStore } from './outbox-store.js';
import { ReleaseStore } from './release-store.js';
import type { RegistryDatabase } from './schema.js';

/**
 * The registry's one repository layer over Kysely: the same code and migrations for SQLite and PostgreSQL, by
 * area — `catalog` (tenants, models, versions, deltas), `devices`, `releases` (transitions, per-device progress,
 * health windows) and the `outbox`. `transaction(fn)` runs `fn` with a store whose areas are all bound to one
 * transaction (nested calls join the outer one).
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
    this.catalog = new CatalogStore(db);
    this.devices = new DeviceStore(db);
    this.releases = new ReleaseStore(db);
    this.outbox = new OutboxStore(db);
  }

  async transaction<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    return this.db
      .transaction()
      .execute((trx: Transaction<RegistryDatabase>) => fn(new RegistryStore(trx, this.kind, true)));
  }
}
