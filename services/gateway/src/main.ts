import { exitOnBootError, isEntryModule, serviceEntry } from '@edgefl/service-kit';
import { GatewayAppModule } from './app.module.js';
import { gatewayConfig } from './config.js';

/** Starts the gateway; `node services/gateway/dist/main.js` runs it on its own. */
export const bootstrap = serviceEntry({ definition: gatewayConfig, module: GatewayAppModule.forRoot });

export { gatewayConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('gateway'));
