import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts, tempDir } from '@edgefl/testing';
import { serviceEnv, SERVICES } from '../src/commands/up.js';
import { buildCli, startCli } from './cli-process.js';

describe('edgefl up', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    buildCli();
    dir = await tempDir('edgefl-up-');
  }, 180_000);
  afterAll(() => dir?.remove());

  it('gives each service its own port variable and never the shared PORT', () => {
    expect(serviceEnv('gateway', { PORT: '1', GATEWAY_PORT: '7', X: 'y' })).toEqual({
      GATEWAY_PORT: '7',
      PORT: '7',
      X: 'y',
    });
    expect(serviceEnv('registry', { PORT: '1', X: 'y' })).toEqual({ X: 'y' });
  });

  it('boots the five services in one process, all ready, and drains on SIGTERM', async () => {
    const ports = await freePorts(SERVICES.length);
    const env = Object.fromEntries(
      SERVICES.map((name, i) => [`${name.toUpperCase()}_PORT`, String(ports[i])]),
    );
    const run = startCli(
      ['up', '--data-dir', dir.path],
      { ...env, GATEWAY_MQTT_PORT: '0', LOG_LEVEL: 'warn' },
      /all services started/,
    );
    await run.started;
    const { stderr } = run.output();
    for (const [i, name] of SERVICES.entries()) {
      expect(stderr).toContain(`edgefl ${name.padEnd(10)} http://127.0.0.1:${ports[i]}`);
      const res = await fetch(`http://127.0.0.1:${ports[i]}/health/ready`);
      expect(res.status, `${name} ready`).toBe(200);
    }
    expect(stderr).toMatch(/edgefl mqtt {7}mqtt:\/\/127\.0\.0\.1:\d+ {2}\(devices connect here\)/);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output().stderr).toContain('SIGTERM, draining');
  });

  it('stops with a one-line reason when a port is taken', async () => {
    const [port] = await freePorts(1);
    const env = { GATEWAY_PORT: String(port), INFERENCE_PORT: String(port), LOG_LEVEL: 'fatal' };
    const run = startCli(['up', '--data-dir', dir.path], env, /all services started/);
    await expect(run.started).rejects.toThrow(/EADDRINUSE/);
    expect(await run.exited).toBe(1);
    expect(run.output().stderr.trim().split('\n').at(-1)).toMatch(
      /^edgefl: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+$/,
    );
  });
});
