import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceSkip } from './external.js';
import { sharedFakeSchemaRegistry } from './fake-schema-registry.js';
import { freePort } from './ports.js';
import { tempDir } from './temp.js';

/** What a service's main.ts exports as `bootstrap` (see serviceEntry in @edgefl/service-kit). */
export type ServiceBootstrap = (options: {
  env: Record<string, string | undefined>;
  shutdownHooks: boolean;
  logDestination: { write(line: string): void };
}) => Promise<{ url: string; close(): Promise<void> }>;

/** Collects a service's JSON log lines in memory (a pino destination). */
export class LogSink {
  readonly lines: string[] = [];
  write(chunk: string): void {
    this.lines.push(...chunk.split('\n').filter(Boolean));
  }
  records(): Array<Record<string, unknown>> {
    return this.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }
}

/** The bus a test service runs on. */
export type TestBusMode = 'embedded' | 'kafka';

/** The variables of the bus (and its schema registry) that reach a test service from the test's environment. */
export const BUS_ENV = [
  'EDGEFL_BUS',
  'KAFKA_BROKERS',
  'KAFKA_CLIENT_ID',
  'KAFKA_SSL',
  'KAFKA_SASL_MECHANISM',
  'KAFKA_SASL_USERNAME',
  'KAFKA_SASL_PASSWORD',
  'SCHEMA_REGISTRY_URL',
] as const;

/** How a test reaches the bus its service runs on (to publish to it or read from it, as another service would). */
export type TestBusTarget =
  { adapter: 'embedded'; path: string } | { adapter: 'kafka'; brokers: string[]; schemaRegistryUrl: string };

let currentMode: TestBusMode | null = null;

/**
 * The bus modes a service suite runs in: `embedded`, and `kafka` where KAFKA_BROKERS is set (else one
 * `SKIPPED <suite> on kafka: <why>` line). Under `npm run test:kafka` (EDGEFL_BUS=kafka) only `kafka`.
 */
export function busModes(suite: string): TestBusMode[] {
  const kafka = Boolean(process.env['KAFKA_BROKERS']);
  if (process.env['EDGEFL_BUS'] === 'kafka') {
    if (!kafka) announceSkip(`${suite} on kafka`, 'EDGEFL_BUS=kafka but KAFKA_BROKERS is not set');
    return kafka ? ['kafka'] : [];
  }
  if (!kafka) announceSkip(`${suite} on kafka`, 'KAFKA_BROKERS is not set');
  return kafka ? ['embedded', 'kafka'] : ['embedded'];
}

/**
 * `describe(name, body)` once per bus mode (see busModes), named `<name> (<mode> bus)`; every startTestService
 * inside runs its service on that bus.
 */
export function describeOnBuses(name: string, body: (mode: TestBusMode) => void): void {
  for (const mode of busModes(name)) describe(`${name} (${mode} bus)`, () => onBus(mode, () => body(mode)));
}

/**
 * `describe.each(cases)` once per bus mode: `describeOnBuses.each(ENGINES)('suite (%s)', (engine) => …)` names
 * each `<name> (<mode> bus)` with vitest's formatting of the case.
 */
describeOnBuses.each =
  <T>(cases: readonly T[]) =>
  (name: string, body: (item: T, mode: TestBusMode) => void): void => {
    for (const mode of busModes(name.replace(/\s*\(%s\)$/, '')))
      describe.each([...cases])(`${name} (${mode} bus)`, (item) => onBus(mode, () => body(item as T, mode)));
  };

/** Runs the body's hooks and tests with startTestService on `mode`. */
function onBus(mode: TestBusMode, body: () => void): void {
  let previous: TestBusMode | null = null;
  beforeAll(() => {
    previous = currentMode;
    currentMode = mode;
  });
  afterAll(() => {
    currentMode = previous;
  });
  body();
}

/**
 * The bus settings of a test service with data directory `dataDir`: the bus variables of the test's environment
 * (BUS_ENV) on the bus of the enclosing describeOnBuses (else the one EDGEFL_BUS names, embedded by default),
 * `extraEnv` over them. On Kafka without SCHEMA_REGISTRY_URL the service gets the test process's fake Confluent
 * schema registry (sharedFakeSchemaRegistry). `target` says how a test reaches the same bus.
 */
export async function testBusEnv(
  dataDir: string,
  extraEnv: Record<string, string> = {},
): Promise<{ env: Record<string, string>; target: TestBusTarget }> {
  const env: Record<string, string> = {};
  for (const name of BUS_ENV) {
    const value = process.env[name];
    if (value !== undefined && value !== '') env[name] = value;
  }
  if (currentMode) env['EDGEFL_BUS'] = currentMode;
  Object.assign(env, extraEnv);
  if (env['EDGEFL_BUS'] === 'kafka' && !env['SCHEMA_REGISTRY_URL'])
    env['SCHEMA_REGISTRY_URL'] = (await sharedFakeSchemaRegistry()).url;
  const target: TestBusTarget =
    env['EDGEFL_BUS'] === 'kafka'
      ? {
          adapter: 'kafka',
          brokers: (env['KAFKA_BROKERS'] ?? '')
            .split(',')
            .map((b) => b.trim())
            .filter(Boolean),
          schemaRegistryUrl: env['SCHEMA_REGISTRY_URL']!,
        }
      : {
          adapter: 'embedded',
          // the service's data directory: `dataDir`, unless the caller's variables move it
          path: env['EDGEFL_BUS_PATH']
            ? resolve(env['EDGEFL_BUS_PATH'])
            : join(env['EDGEFL_DATA_DIR'] ?? dataDir, 'bus.sqlite'),
        };
  return { env, target };
}

/**
 * Starts a service on a free port with a private data directory (keyring, embedded bus) on the bus testBusEnv
 * chooses; `extraEnv` overrides any variable.
 */
export async function startTestService(
  bootstrap: ServiceBootstrap,
  extraEnv: Record<string, string> = {},
): Promise<{ url: string; logs: LogSink; dataDir: string; bus: TestBusTarget; stop(): Promise<void> }> {
  const dir = await tempDir('edgefl-svc-');
  const logs = new LogSink();
  const bus = await testBusEnv(dir.path, extraEnv);
  const env: Record<string, string | undefined> = {
    PATH: process.env['PATH'],
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    EDGEFL_DATA_DIR: dir.path,
    LOG_LEVEL: 'info',
    ...bus.env,
    ...extraEnv,
  };
  let service: Awaited<ReturnType<ServiceBootstrap>>;
  try {
    service = await bootstrap({ env, shutdownHooks: false, logDestination: logs });
  } catch (error) {
    await dir.remove();
    throw error;
  }
  return {
    url: service.url,
    logs,
    dataDir: dir.path,
    bus: bus.target,
    async stop() {
      await service.close();
      await dir.remove();
    },
  };
}

/**
 * What every service must do, run against the real app on a free port: liveness, readiness once its adapters
 * are connected, Prometheus metrics, problem+json for unknown routes, its OpenAPI document (when it serves one),
 * JSON logs, config errors at boot naming the variable.
 */
export function runServiceBasicsSuite(
  name: string,
  bootstrap: ServiceBootstrap,
  /** The readiness checks this service must report (its adapters), besides `lifecycle`. */
  adapters: string[] = [],
  /** `openApiTitle`: the service serves its OpenAPI document at /openapi.json with this title. */
  options: { openApiTitle?: string } = {},
): void {
  describeOnBuses(`${name} service basics`, (mode) => {
    let service: Awaited<ReturnType<typeof startTestService>>;
    beforeAll(async () => {
      service = await startTestService(bootstrap);
    });
    afterAll(async () => {
      await service?.stop();
    });

    it('answers liveness', async () => {
      const res = await fetch(`${service.url}/health/live`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { status: string }).status).toBe('ok');
    });

    it('is ready once its adapters are connected', async () => {
      const res = await fetch(`${service.url}/health/ready`);
      const body = (await res.json()) as { status: string; info: Record<string, unknown> };
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(Object.keys(body.info).sort()).toEqual(['lifecycle', ...adapters].sort());
      // on Kafka, the bus check is the Kafka adapter's (brokers, groups and their partitions all owned)
      if (mode === 'kafka' && adapters.includes('bus'))
        expect(JSON.stringify(body.info['bus'])).toMatch(/kafka/);
    });

    it('exposes Prometheus metrics, including its HTTP traffic', async () => {
      await fetch(`${service.url}/health/live`);
      const res = await fetch(`${service.url}/metrics`);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      const text = await res.text();
      expect(text).toMatch(/edgefl_process_cpu_seconds_total\{service="[a-z]+"\}/);
      expect(text).toMatch(/edgefl_http_requests_total\{method="GET",route="\/health\/live",status="200"/);
    });

    it('answers unknown routes with application/problem+json', async () => {
      const res = await fetch(`${service.url}/no/such/route`);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await res.json()) as { status: number; title: string; instance: string };
      expect(problem).toMatchObject({ status: 404, title: 'Not Found', instance: '/no/such/route' });
    });

    // only for a service that serves one (no phantom skip for the others)
    if (options.openApiTitle !== undefined)
      it('serves its OpenAPI 3 document at /openapi.json', async () => {
        const res = await fetch(`${service.url}/openapi.json`);
        expect(res.status).toBe(200);
        const document = (await res.json()) as { openapi: string; info: { title: string } };
        expect(document.openapi).toMatch(/^3\./);
        expect(document.info.title).toBe(options.openApiTitle);
      });

    it('writes structured JSON logs', () => {
      const listening = service.logs.records().find((r) => r['msg'] === 'listening');
      expect(listening).toMatchObject({ level: 'info', service: name });
    });

    it('refuses to boot on a bad variable, naming it', async () => {
      await expect(startTestService(bootstrap, { PORT: 'not-a-port', EDGEFL_BUS: 'kafak' })).rejects.toThrow(
        /PORT must be .*got "not-a-port".*EDGEFL_BUS must be one of "embedded" \| "kafka" \(got "kafak"\)/,
      );
    });
  });
}
