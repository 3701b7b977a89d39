import {
  openDatabase as openServiceDatabase,
  type DatabaseTarget,
  type OpenedDatabase,
} from '@edgefl/service-kit';
import { telemetryMigrations } from './migrations.js';
import type { TelemetryDatabase } from './schema.js';

export type OpenedTelemetryDatabase = OpenedDatabase<TelemetryDatabase>;

/** Opens the telemetry store (SQLite file or PostgreSQL) and migrates it (service-kit's storage plumbing). */
export function openTelemetryDatabase(target: DatabaseTarget): Promise<OpenedTelemetryDatabase> {
  return openServiceDatabase<TelemetryDatabase>(target, {
    name: 'telemetry',
    migrations: telemetryMigrations,
    pingTable: 'devices',
  });
}
