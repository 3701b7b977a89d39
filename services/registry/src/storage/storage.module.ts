import { Global, Module, type DynamicModule } from '@nestjs/common';
import { KEY_PROVIDER, storeProviders } from '@edgefl/service-kit';
import type { KeyProvider } from '@edgefl/keys';
import { EncryptedBlobStore } from '../artifacts/blob-store.js';
import type { RegistryConfig } from '../config.js';
import { BLOB_STORE, REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { openDatabase } from './database.js';
import { RegistryStore } from './registry-store.js';

/** Opens the metadata store (PostgreSQL when DATABASE_URL is set, else SQLite), migrates it, and the blob store. */
@Global()
@Module({})
export class StorageModule {
  static forRoot(config: RegistryConfig): DynamicModule {
    return {
      module: StorageModule,
      providers: [
        { provide: REGISTRY_CONFIG, useValue: config },
        ...storeProviders({
          name: 'registry',
          open: () =>
            openDatabase(
              config.databaseUrl
                ? { kind: 'postgres', url: config.databaseUrl }
                : { kind: 'sqlite', path: config.own.sqlitePath },
            ),
          provide: REGISTRY_STORE,
          create: (database) => new RegistryStore(database.db, database.kind),
        }),
        {
          provide: BLOB_STORE,
          inject: [KEY_PROVIDER],
          useFactory: (keys: KeyProvider) => new EncryptedBlobStore(config.own.artifactDir, keys),
        },
      ],
      exports: [REGISTRY_CONFIG, REGISTRY_STORE, BLOB_STORE],
    };
  }
}
