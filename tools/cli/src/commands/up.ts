import { readFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { DestinationStream } from 'pino';
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
  /** Where the service's JSON log lines go (default stdout). */
  logDestination?: DestinationStream;
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

/**
 * What one service needs to know of the services booted before it, in one process: the aggregator reads base
 * versions from the registry (its URL and admin token) and writes large round results where the registry may read
 * them (REGISTRY_ROUND_ARTIFACT_PREFIXES must list AGGREGATOR_ARTIFACT_DIR); the gateway checks device tokens
 * against the registry's JWKS. Variables the caller set win.
 */
export function wireStack(
  env: Record<string, string | undefined>,
  registry?: { url: string; adminToken: string | undefined },
): void {
  const dataDir = resolve(env['EDGEFL_DATA_DIR'] ?? '.edgefl');
  const artifactDir = env['AGGREGATOR_ARTIFACT_DIR'];
  const roundResults =
    artifactDir === undefined
      ? join(dataDir, 'round-results')
      : isAbsolute(artifactDir)
        ? artifactDir
        : resolve(artifactDir);
  env['AGGREGATOR_ARTIFACT_DIR'] = roundResults;
  const prefixes = (env['REGISTRY_ROUND_ARTIFACT_PREFIXES'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (!prefixes.includes(roundResults)) prefixes.push(roundResults);
  env['REGISTRY_ROUND_ARTIFACT_PREFIXES'] = prefixes.join(',');
  if (!registry) return;
  env['AGGREGATOR_REGISTRY_URL'] ??= registry.url;
  if (registry.adminToken !== undefined) env['AGGREGATOR_REGISTRY_TOKEN'] ??= registry.adminToken;
  env['GATEWAY_JWKS_URL'] ??= `${registry.url}/v1/device-tokens/jwks.json`;
}

/**
 * Waits until every service answers /health/ready with 200. Listening is not ready: the gateway refuses CONNECTs
 * ("server unavailable") until it has replayed the device lifecycle topic, so devices started on a listening but
 * unready stack would start offline.
 */
async function waitReady(
  running: ReadonlyArray<{ name: ServiceName; service: RunningService }>,
  timeoutMs: number,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (const { name, service } of running) {
    let last: string;
    for (;;) {
      try {
        const res = await fetch(`${service.url}/health/ready`, { signal: AbortSignal.timeout(5_000) });
        if (res.status === 200) {
          await res.body?.cancel();
          break;
        }
        last = `HTTP ${res.status} ${(await res.text()).slice(0, 200)}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > end)
        throw new Error(`the ${name} service did not become ready within ${timeoutMs / 1000} s: ${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The registry's admin token: REGISTRY_ADMIN_TOKEN, else the one it generated into its data dir. */
export async function registryAdminToken(
  env: Record<string, string | undefined>,
): Promise<string | undefined> {
  const configured = env['REGISTRY_ADMIN_TOKEN'];
  if (configured !== undefined && configured !== '') return configured;
  const path = join(resolve(env['EDGEFL_DATA_DIR'] ?? '.edgefl'), 'registry-admin-token');
  return (await readFile(path, 'utf8').catch(() => '')).trim() || undefined;
}

export interface Stack {
  services: Array<{ name: ServiceName; url: string; mqttUrl?: string }>;
  /** The registry's admin token (management API). */
  registryAdminToken: string | undefined;
  stop(): Promise<void>;
}

/** Boots the five services in one process on the embedded stack (or whatever the environment selects). */
export async function up(options: {
  dataDir?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** How a service's bootstrap is found (default: its package, by name). */
  load?: (name: ServiceName) => Promise<Bootstrap>;
  /** Where the services' JSON logs go (default stdout). */
  logDestination?: DestinationStream;
  /** How long the services may take to report ready after they listen (default 60 s). */
  readyTimeoutMs?: number;
}): Promise<Stack> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const load = options.load ?? loadService;
  const env = { ...(options.env ?? process.env) };
  if (options.dataDir) env['EDGEFL_DATA_DIR'] = options.dataDir;
  wireStack(env);
  const running: Array<{ name: ServiceName; service: RunningService }> = [];
  let adminToken: string | undefined;
  try {
    for (const name of SERVICES) {
      const bootstrap = await load(name);
      const service = await bootstrap({
        env: serviceEnv(name, env),
        shutdownHooks: false,
        ...(options.logDestination ? { logDestination: options.logDestination } : {}),
      });
      running.push({ name, service });
      if (name === 'registry') {
        adminToken = await registryAdminToken(env);
        wireStack(env, { url: service.url, adminToken });
      }
    }
  } catch (error) {
    // The boot error is the one to report; a close failure while cleaning up must not replace it.
    await closeAll(running.map((r) => r.service)).catch(() => undefined);
    throw error;
  }
  try {
    await waitReady(running, options.readyTimeoutMs ?? 60_000);
  } catch (error) {
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
  return {
    services: running.map(({ name, service }) => ({
      name,
      url: service.url,
      ...(service.mqttUrl ? { mqttUrl: service.mqttUrl } : {}),
    })),
    registryAdminToken: adminToken,
    stop: stopAll,
  };
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
