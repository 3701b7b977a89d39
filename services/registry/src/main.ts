import { exitOnBootError, isEntryModule, serviceEntry } from '@edgefl/service-kit';
import { RegistryAppModule } from './app.module.js';
import { registryConfig } from './config.js';

/** Starts the registry; `node services/registry/dist/main.js` runs it on its own. */
export const bootstrap = serviceEntry({ definition: registryConfig, module: RegistryAppModule.forRoot });

export { registryConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('registry'));
