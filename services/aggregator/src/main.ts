import { exitOnBootError, isEntryModule, serviceEntry } from '@edgefl/service-kit';
import { AggregatorAppModule } from './app.module.js';
import { aggregatorConfig } from './config.js';

/** Starts the aggregator; `node services/aggregator/dist/main.js` runs it on its own. */
export const bootstrap = serviceEntry({ definition: aggregatorConfig, module: AggregatorAppModule.forRoot });

export { aggregatorConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('aggregator'));
