import {
  openDatabase as openServiceDatabase,
  type DatabaseTarget,
  type OpenedDatabase as OpenedServiceDatabase,
} from '@edgefl/service-kit';
import { registryMigrations } from './migrations.js';
import type { RegistryDatabase } from './schema.js';

export type { DatabaseKind, DatabaseTarget } from '@edgefl/service-kit';
export type OpenedDatabase = OpenedServiceDatabase<RegistryDatabase>;

/** Opens the registry's metadata store (SQLite file or PostgreSQL) and migrates it (service-kit's storage plumbing). */
export function openDatabase(target: DatabaseTarget): Promise<OpenedDatabase> {
  return openServiceDatabase<RegistryDatabase>(target, {
    name: 'registry',
    migrations: registryMigrations,
    pingTable: 'tenants',
  });
}
