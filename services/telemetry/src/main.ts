import { exitOnBootError, isEntryModule, serviceEntry } from '@edgefl/service-kit';
import { TelemetryAppModule } from './app.module.js';
import { telemetryConfig } from './config.js';

/** Starts the telemetry; `node services/telemetry/dist/main.js` runs it on its own. */
export const bootstrap = serviceEntry({ definition: telemetryConfig, module: TelemetryAppModule.forRoot });

export { telemetryConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('telemetry'));
