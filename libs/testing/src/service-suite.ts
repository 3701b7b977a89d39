import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

/** Starts a service on a free port with a private data directory (embedded bus and keyring). */
export async function startTestService(
  bootstrap: ServiceBootstrap,
  extraEnv: Record<string, string> = {},
): Promise<{ url: string; logs: LogSink; dataDir: string; stop(): Promise<void> }> {
  const dir = await tempDir('edgefl-svc-');
  const logs = new LogSink();
  const env = {
    PATH: process.env['PATH'],
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    EDGEFL_DATA_DIR: dir.path,
    LOG_LEVEL: 'info',
    ...extraEnv,
  };
  const service = await bootstrap({ env, shutdownHooks: false, logDestination: logs });
  return {
    url: service.url,
    logs,
    dataDir: dir.path,
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
  describe(`${name} service basics`, () => {
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
