import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePorts, postgresFromEnv, splitHostPort, tcpReachable } from './index.js';

describe('libs/testing', () => {
  it('hands out distinct ports that can be bound', async () => {
    const ports = await freePorts(3);
    expect(new Set(ports).size).toBe(3);
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve));
    expect(await tcpReachable('127.0.0.1', ports[0]!)).toBe(true);
    await new Promise((resolve) => server.close(resolve));
    expect(await tcpReachable('127.0.0.1', ports[0]!, 300)).toBe(false);
  });

  it('splits host:port with a default', () => {
    expect(splitHostPort('kafka:29092', 9092)).toEqual(['kafka', 29092]);
    expect(splitHostPort('kafka', 9092)).toEqual(['kafka', 9092]);
  });
});

describe('postgresFromEnv', () => {
  const saved = process.env['TEST_DATABASE_URL'];
  afterEach(() => {
    if (saved === undefined) delete process.env['TEST_DATABASE_URL'];
    else process.env['TEST_DATABASE_URL'] = saved;
  });

  it('reports a malformed TEST_DATABASE_URL as unavailable without echoing it', async () => {
    for (const value of [
      'not a url with s3cret',
      'http://user:s3cret@db:5432/x',
      'postgres://user:s3cret@:5432/x',
    ]) {
      process.env['TEST_DATABASE_URL'] = value;
      const result = await postgresFromEnv();
      expect(result.available).toBe(false);
      expect(result.available ? '' : result.why).not.toContain('s3cret');
    }
  });

  it('reports a closed port as unavailable', async () => {
    const [port] = await freePorts(1);
    process.env['TEST_DATABASE_URL'] = `postgres://postgres@127.0.0.1:${port}/test`;
    expect(await postgresFromEnv()).toEqual({
      available: false,
      why: `PostgreSQL at 127.0.0.1:${port} does not accept connections`,
    });
  });
});
