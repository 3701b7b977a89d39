import { Global, Module, type DynamicModule } from '@nestjs/common';
import { storeProviders } from '@edgefl/service-kit';
import type { TelemetryConfig } from '../config.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import { openTelemetryDatabase } from './database.js';
import { TelemetryStore } from './telemetry-store.js';

/** Opens the telemetry store (PostgreSQL when DATABASE_URL is set, else SQLite in the data dir) and migrates it. */
@Global()
@Module({})
export class StorageModule {
  static forRoot(config: TelemetryConfig): DynamicModule {
    return {
      module: StorageModule,
      providers: [
        { provide: TELEMETRY_CONFIG, useValue: config },
        ...storeProviders({
          name: 'telemetry',
          open: () =>
            openTelemetryDatabase(
              config.databaseUrl
                ? { kind: 'postgres', url: config.databaseUrl }
                : { kind: 'sqlite', path: config.own.sqlitePath },
            ),
          provide: TELEMETRY_STORE,
          create: (database) => new TelemetryStore(database.db, database.kind),
        }),
      ],
      exports: [TELEMETRY_CONFIG, TELEMETRY_STORE],
    };
  }
}
