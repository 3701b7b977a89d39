import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePorts, splitHostPort, tcpReachable } from './index.js';

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
