import {
  Global,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ReadinessRegistry } from '@edgefl/service-kit';
import type { TelemetryConfig } from '../config.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import { openTelemetryDatabase, type OpenedTelemetryDatabase } from './database.js';
import { TelemetryStore } from './telemetry-store.js';

const OPENED_DATABASE = Symbol.for('edgefl.telemetry.opened-database');

@Injectable()
class StorageLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(OPENED_DATABASE) private readonly database: OpenedTelemetryDatabase,
    readiness: ReadinessRegistry,
  ) {
    readiness.register('store', async () => {
      await this.database.ping();
      return { ready: true, detail: { engine: this.database.kind } };
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.database.close();
  }
}

/** Opens the telemetry store (PostgreSQL when DATABASE_URL is set, else SQLite in the data dir) and migrates it. */
@Global()
@Module({})
export class StorageModule {
  static forRoot(config: TelemetryConfig): DynamicModule {
    return {
      module: StorageModule,
      providers: [
        { provide: TELEMETRY_CONFIG, useValue: config },
        {
          provide: OPENED_DATABASE,
          useFactory: () =>
            openTelemetryDatabase(
              config.databaseUrl
                ? { kind: 'postgres', url: config.databaseUrl }
                : { kind: 'sqlite', path: config.own.sqlitePath },
            ),
        },
        {
          provide: TELEMETRY_STORE,
          inject: [OPENED_DATABASE],
          useFactory: (database: OpenedTelemetryDatabase) => new TelemetryStore(database.db, database.kind),
        },
        StorageLifecycle,
      ],
      exports: [TELEMETRY_CONFIG, TELEMETRY_STORE],
    };
  }
}
