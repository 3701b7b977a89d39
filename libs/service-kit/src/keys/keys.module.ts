import { Inject, Injectable, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { createKeyProvider, type KeyProvider } from '@edgefl/keys';
import type { KeysConfig } from '../config/service-config.js';
import { ReadinessRegistry } from '../health/readiness.js';

/** Injection token of the service's KeyProvider (local keyring or Vault, chosen by EDGEFL_KEYS). */
export const KEY_PROVIDER = Symbol.for('edgefl.key-provider');

@Injectable()
class KeysLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    readiness: ReadinessRegistry,
  ) {
    readiness.register('keys', async () => {
      const health = await this.keys.health();
      return { ready: health.ok, detail: { backend: health.backend, message: health.detail } };
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.keys.close();
  }
}

/** Opens the configured KeyProvider at boot, reports it in readiness, closes it on shutdown. */
@Module({})
export class KeysModule {
  static forRoot(config: KeysConfig): DynamicModule {
    return {
      module: KeysModule,
      providers: [
        {
          provide: KEY_PROVIDER,
          useFactory: () =>
            createKeyProvider(
              config.kind === 'local'
                ? { kind: 'local', path: config.path }
                : {
                    kind: 'vault',
                    endpoint: config.endpoint,
                    token: config.token,
                    transitMount: config.transitMount,
                    kvMount: config.kvMount,
                  },
            ),
        },
        KeysLifecycle,
      ],
      exports: [KEY_PROVIDER],
    };
  }
}
