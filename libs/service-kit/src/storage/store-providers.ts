import { Inject, Injectable, type OnApplicationShutdown, type Provider } from '@nestjs/common';
import { ReadinessRegistry } from '../health/readiness.js';
import type { OpenedDatabase } from './database.js';

export interface StoreProvidersOptions<DB, S> {
  /** Names the store's internal token (`edgefl.<name>.opened-database`). */
  name: string;
  /** Opens and migrates the database (openDatabase with the service's migrations). */
  open: () => Promise<OpenedDatabase<DB>>;
  /** The token the service's store is injected by. */
  provide: symbol | string;
  /** The service's repository over the opened database. */
  create: (opened: OpenedDatabase<DB>) => S;
}

/**
 * The Nest providers of a service's metadata store: the database opened (and migrated) once, the service's store over
 * it, a `store` readiness check that pings it (`{ engine }` in the detail), and a close at shutdown.
 */
export function storeProviders<DB, S>(options: StoreProvidersOptions<DB, S>): Provider[] {
  const opened = Symbol.for(`edgefl.${options.name}.opened-database`);

  @Injectable()
  class StoreLifecycle implements OnApplicationShutdown {
    constructor(
      @Inject(opened) private readonly database: OpenedDatabase<DB>,
      @Inject(ReadinessRegistry) readiness: ReadinessRegistry,
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

  return [
    { provide: opened, useFactory: options.open },
    { provide: options.provide, inject: [opened], useFactory: options.create },
    StoreLifecycle,
  ];
}
