import {
  Global,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { KEY_PROVIDER, ReadinessRegistry } from '@edgefl/service-kit';
import type { KeyProvider } from '@edgefl/keys';
import { EncryptedBlobStore } from '../artifacts/blob-store.js';
import type { RegistryConfig } from '../config.js';
import { BLOB_STORE, REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { openDatabase, type OpenedDatabase } from './database.js';
import { RegistryStore } from './registry-store.js';

const OPENED_DATABASE = Symbol.for('edgefl.registry.opened-database');

@Injectable()
class StorageLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(OPENED_DATABASE) private readonly database: OpenedDatabase,
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

/** Opens the metadata store (PostgreSQL when DATABASE_URL is set, else SQLite), migrates it, and the blob store. */
@Global()
@Module({})
export class StorageModule {
  static forRoot(config: RegistryConfig): DynamicModule {
    return {
      module: StorageModule,
      providers: [
        { provide: REGISTRY_CONFIG, useValue: config },
        {
          provide: OPENED_DATABASE,
          useFactory: () =>
            openDatabase(
              config.databaseUrl
                ? { kind: 'postgres', url: config.databaseUrl }
                : { kind: 'sqlite', path: config.own.sqlitePath },
            ),
        },
        {
          provide: REGISTRY_STORE,
          inject: [OPENED_DATABASE],
          useFactory: (database: OpenedDatabase) => new RegistryStore(database.db, database.kind),
        },
        {
          provide: BLOB_STORE,
          inject: [KEY_PROVIDER],
          useFactory: (keys: KeyProvider) => new EncryptedBlobStore(config.own.artifactDir, keys),
        },
        StorageLifecycle,
      ],
      exports: [REGISTRY_CONFIG, REGISTRY_STORE, BLOB_STORE],
    };
  }
}
