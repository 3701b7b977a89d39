import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

export const SERVICES = ['registry', 'aggregator', 'telemetry', 'inference', 'gateway'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface RunningService {
  url: string;
  /** Where devices connect (the gateway's MQTT listener). */
  mqttUrl?: string;
  close(): Promise<void>;
}
export type Bootstrap = (options: {
  env: Record<string, string | undefined>;
  shutdownHooks: boolean;
}) => Promise<RunningService>;

/**
 * The launcher is a composition root: it loads each service's entry module by name at run time. The specifier is
 * computed on purpose, so no static import of a service exists anywhere (services are never imported as
 * libraries — DESIGN.md §2); Nx still builds them first through the CLI's implicit dependencies.
 */
async function loadService(name: ServiceName): Promise<Bootstrap> {
  const specifier = `@edgefl/${name}`;
  const module = (await import(specifier)) as { bootstrap?: Bootstrap };
  if (typeof module.bootstrap !== 'function') throw new Error(`${specifier} exports no bootstrap()`);
  return module.bootstrap;
}

/** The environment one service sees: the shared variables, and its own port from <SERVICE>_PORT if set. */
export function serviceEnv(name: ServiceName, env: NodeJS.ProcessEnv): Record<string, string | undefined> {
  const { PORT: _ignored, ...shared } = env;
  const own = env[`${name.toUpperCase()}_PORT`];
  return own === undefined ? shared : { ...shared, PORT: own };
}

/** Closes services newest first; one that fails to close does not keep the others running. */
async function closeAll(services: readonly RunningService[]): Promise<void> {
  const errors: unknown[] = [];
  for (const service of [...services].reverse()) {
    try {
      await service.close();
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} services failed to stop`);
}

/** Boots the five services in one process on the embedded stack (or whatever the environment selects). */
export async function up(options: {
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** How a service's bootstrap is found (default: its package, by name). */
  load?: (name: ServiceName) => Promise<Bootstrap>;
}) {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const load = options.load ?? loadService;
  const env = { ...(options.env ?? process.env) };
  if (options.dataDir) env['EDGEFL_DATA_DIR'] = options.dataDir;
  const running: Array<{ name: ServiceName; service: RunningService }> = [];
  try {
    for (const name of SERVICES) {
      const bootstrap = await load(name);
      running.push({ name, service: await bootstrap({ env: serviceEnv(name, env), shutdownHooks: false }) });
    }
  } catch (error) {
    // The boot error is the one to report; a close failure while cleaning up must not replace it.
    await closeAll(running.map((r) => r.service)).catch(() => undefined);
    throw error;
  }
  let stopping: Promise<void> | null = null;
  // Once only: SIGINT then SIGTERM (or a second Ctrl-C) must not close the services a second time.
  const stopAll = () => (stopping ??= closeAll(running.map((r) => r.service)));
  for (const { name, service } of running) {
    log(
      `edgefl ${name.padEnd(10)} ${service.url}  (health: ${service.url}/health/ready, metrics: ${service.url}/metrics)`,
    );
    if (service.mqttUrl) log(`edgefl ${'mqtt'.padEnd(10)} ${service.mqttUrl}  (devices connect here)`);
  }
  return { services: running.map(({ name, service }) => ({ name, url: service.url })), stop: stopAll };
}

export function register(program: Command): void {
  program
    .command('up')
    .description(
      'boot the five services in one process (embedded bus and keys by default) and print their URLs',
    )
    .option('--data-dir <dir>', 'where the embedded stack keeps its files (EDGEFL_DATA_DIR, default .edgefl)')
    .action(async (opts: { dataDir?: string }) => {
      if (opts.dataDir !== undefined && opts.dataDir.trim() === '')
        throw new UsageError('--data-dir must not be empty');
      const stack = await up(opts.dataDir ? { dataDir: opts.dataDir } : {});
      process.stderr.write('edgefl: all services started; Ctrl-C stops them\n');
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals) => {
          process.stderr.write(`edgefl: ${signal}, draining\n`);
          stack.stop().then(resolve, (error: unknown) => {
            process.stderr.write(`edgefl: drain failed: ${(error as Error).message}\n`);
            process.exitCode = 1;
            resolve();
          });
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
