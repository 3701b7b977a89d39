import {
  exitOnBootError,
  isEntryModule,
  serviceEntry,
  type BootstrapOptions,
  type RunningService,
} from '@edgefl/service-kit';
import { RegistryAppModule } from './app.module.js';
import { registryConfig } from './config.js';
import { buildOpenApi } from './openapi/openapi.js';

const start = serviceEntry({ definition: registryConfig, module: RegistryAppModule.forRoot });

/** Starts the registry; `node services/registry/dist/main.js` runs it on its own. */
export async function bootstrap(options?: BootstrapOptions): Promise<RunningService> {
  const running = await start(options);
  buildOpenApi(running.app);
  return running;
}

export { registryConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('registry'));
