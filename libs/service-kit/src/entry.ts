import { pathToFileURL } from 'node:url';
import type { DynamicModule } from '@nestjs/common';
import type { DestinationStream, Logger } from 'pino';
import type { BaseConfig, ServiceConfigDefinition } from './config/service-config.js';
import { createLogger } from './logging/logger.js';
import { startService, type RunningService } from './bootstrap.js';
import { buildOpenApi } from './openapi/openapi.module.js';

export interface BootstrapOptions {
  /** Environment to read instead of process.env (tests, the one-process launcher). */
  env?: Record<string, string | undefined>;
  /** Off when several services share one process (the launcher handles signals once for all of them). */
  shutdownHooks?: boolean;
  /** Where JSON log lines go (default stdout). */
  logDestination?: DestinationStream;
}

/**
 * The `bootstrap` every service exports: validate the config (a bad variable stops the boot with one line),
 * create the JSON logger with the config's secrets scrubbed, build the app module, listen, and build the OpenAPI
 * document of an app that serves one (OpenApiModule).
 */
export function serviceEntry<Own>(options: {
  definition: ServiceConfigDefinition<Own>;
  module: (config: BaseConfig & { own: Own }, logger: Logger) => DynamicModule;
}): (bootstrapOptions?: BootstrapOptions) => Promise<RunningService> {
  return async (bootstrapOptions = {}) => {
    const config = options.definition.load(bootstrapOptions.env ?? process.env);
    const logger = createLogger({
      service: config.service,
      level: config.log.level,
      secrets: config.secrets,
      ...(bootstrapOptions.logDestination ? { destination: bootstrapOptions.logDestination } : {}),
    });
    const running = await startService({
      config,
      logger,
      module: options.module(config, logger),
      shutdownHooks: bootstrapOptions.shutdownHooks ?? true,
    });
    buildOpenApi(running.app);
    return running;
  };
}

/** True when the module at `moduleUrl` is the process's entry script (`node dist/main.js`). */
export function isEntryModule(moduleUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && pathToFileURL(entry).href === moduleUrl;
}
