import { exitOnBootError, isEntryModule, serviceEntry } from '@edgefl/service-kit';
import { InferenceAppModule } from './app.module.js';
import { inferenceConfig } from './config.js';

/** Starts the inference; `node services/inference/dist/main.js` runs it on its own. */
export const bootstrap = serviceEntry({ definition: inferenceConfig, module: InferenceAppModule.forRoot });

export { inferenceConfig };

if (isEntryModule(import.meta.url)) bootstrap().catch(exitOnBootError('inference'));
