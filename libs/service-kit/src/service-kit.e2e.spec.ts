import { Controller, Get, Injectable, Module, Post, type OnApplicationShutdown } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, tempDir } from '@edgefl/testing';
import { defineServiceConfig } from './config/service-config.js';
import { ReadinessRegistry } from './health/readiness.js';
import { ConflictError, TamperedError } from './errors/domain-errors.js';
import { ProblemException } from './http/problem-details.filter.js';
import { JsonBody } from './http/validation.js';
import { createLogger } from './logging/logger.js';
import { startService, type RunningService } from './bootstrap.js';
import { ServiceKitModule } from './service-kit.module.js';

@Controller('echo')
class EchoController {
  @Post()
  echo(@JsonBody() body: unknown) {
    return body;
  }
  @Get('boom')
  boom() {
    throw new Error('secret internals: connection string postgres://u:p@h/db');
  }
  @Get('domain-conflict')
  domainConflict() {
    throw new ConflictError('release r1 changed meanwhile; retry', { revision: 4 });
  }
  @Get('tampered')
  tampered() {
    throw new TamperedError('the stored artifact does not match its sha256');
  }
  @Get('conflict')
  conflict() {
    throw new ProblemException({
      type: 'https://edgefl.dev/problems/version-conflict',
      title: 'Conflict',
      status: 409,
      detail: 'version 3 exists',
      version: 3,
    });
  }
}

/** An adapter as the bus will be: a readiness check, and work to finish on shutdown. */
@Injectable()
class FakeAdapter implements OnApplicationShutdown {
  static drainingWhenClosed: boolean | undefined;
  static ready = true;
  constructor(private readonly readiness: ReadinessRegistry) {
    readiness.register('fake-adapter', () => ({
      ready: FakeAdapter.ready,
      detail: { connected: FakeAdapter.ready },
    }));
  }
  onApplicationShutdown(): void {
    FakeAdapter.drainingWhenClosed = this.readiness.draining;
  }
}

@Module({ providers: [FakeAdapter] })
class FakeAdapterModule {}

describe('service kit over HTTP', () => {
  let service: RunningService | undefined;
  const lines: string[] = [];

  async function start(): Promise<RunningService> {
    const config = defineServiceConfig({
      service: 'kit-test',
      defaultPort: 1,
      ownShape: {},
      mapOwn: () => ({}),
    }).load({
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: `${(await tempDir('edgefl-kit-')).path}/data`,
    });
    const logger = createLogger({
      service: 'kit-test',
      level: 'info',
      destination: { write: (l: string) => void lines.push(l) },
    });
    @Module({
      imports: [ServiceKitModule.forRoot({ config, logger, adapters: [{ module: FakeAdapterModule }] })],
      controllers: [EchoController],
    })
    class TestAppModule {}
    service = await startService({ config, logger, module: { module: TestAppModule }, shutdownHooks: false });
    return service;
  }

  afterEach(async () => {
    await service?.close();
    service = undefined;
    FakeAdapter.ready = true;
  });

  it('answers bad bodies with problem+json: 400 malformed JSON, 413 too large', async () => {
    const { url } = await start();
    const malformed = await fetch(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a":',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const big = await fetch(`${url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: 'a'.repeat(2_000_000) }),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ status: 413, title: 'Content Too Large' });
  });

  it('hides internals of unexpected errors but logs them; keeps typed problems as they are', async () => {
    const { url } = await start();
    const res = await fetch(`${url}/echo/boom`);
    expect(res.status).toBe(500);
    const body = await res.text();
    expect(body).not.toContain('postgres://');
    expect(JSON.parse(body)).toMatchObject({ status: 500, detail: 'internal error', instance: '/echo/boom' });
    expect(lines.some((l) => l.includes('unhandled error'))).toBe(true);
    const conflict = await fetch(`${url}/echo/conflict`);
    expect(conflict.status).toBe(409);
    expect(await conflict.json()).toMatchObject({
      type: 'https://edgefl.dev/problems/version-conflict',
      version: 3,
    });
  });

  it('maps domain errors to problem+json by their kind, with their details as members', async () => {
    const { url } = await start();
    const conflict = await fetch(`${url}/echo/domain-conflict`);
    expect(conflict.status).toBe(409);
    expect(conflict.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await conflict.json()).toEqual({
      type: 'https://edgefl.dev/problems/conflict',
      title: 'Conflict',
      status: 409,
      detail: 'release r1 changed meanwhile; retry',
      revision: 4,
      instance: '/echo/domain-conflict',
    });
    const tampered = await fetch(`${url}/echo/tampered`);
    expect(tampered.status).toBe(500);
    expect(await tampered.json()).toMatchObject({ type: 'https://edgefl.dev/problems/artifact-tampered' });
  });

  it('reports not ready while an adapter is down, with the failing check', async () => {
    const { url } = await start();
    FakeAdapter.ready = false;
    const res = await fetch(`${url}/health/ready`);
    expect(res.status).toBe(503);
    expect(JSON.stringify(await res.json())).toContain('fake-adapter');
    FakeAdapter.ready = true;
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
  });

  it('goes not-ready before adapters drain on shutdown', async () => {
    const running = await start();
    FakeAdapter.drainingWhenClosed = undefined;
    await running.close();
    service = undefined;
    expect(FakeAdapter.drainingWhenClosed).toBe(true);
    expect(lines.some((l) => JSON.parse(l).msg === 'draining')).toBe(true);
  });
});
