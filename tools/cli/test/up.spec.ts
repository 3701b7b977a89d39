import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SERVICES, up, wireStack, type ServiceName } from '../src/commands/up.js';

/**
 * Services that only record what happens to them (no Nest app): each answers /health/ready on a loopback port, 200
 * or, for `notReady`, 503.
 */
function fakeStack(
  options: { failBoot?: ServiceName; failClose?: ServiceName; notReady?: ServiceName } = {},
) {
  const closed: string[] = [];
  const load = async (name: ServiceName) => async () => {
    if (name === options.failBoot) throw new Error(`${name} cannot boot`);
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/health/ready' && name !== options.notReady ? 200 : 503);
      res.end(name === options.notReady ? 'replaying edgefl.device.lifecycle.v1' : 'ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: async () => {
        closed.push(name);
        await new Promise((r) => server.close(r));
        if (name === options.failClose) throw new Error(`${name} close failed`);
      },
    };
  };
  return { closed, load };
}

describe('edgefl up (in process)', () => {
  it('stops every service once, newest first, however often stop is called', async () => {
    const { closed, load } = fakeStack();
    const stack = await up({ load, log: () => undefined });
    await Promise.all([stack.stop(), stack.stop()]);
    await stack.stop();
    expect(closed).toEqual([...SERVICES].reverse());
  });

  it('stops the other services when one fails to close, then reports the failure', async () => {
    const { closed, load } = fakeStack({ failClose: 'telemetry' });
    const stack = await up({ load, log: () => undefined });
    await expect(stack.stop()).rejects.toThrow(/telemetry close failed/);
    expect(closed).toEqual([...SERVICES].reverse());
  });

  it('on a boot failure stops what started and reports the boot error, not a close error', async () => {
    const { closed, load } = fakeStack({ failBoot: 'inference', failClose: 'aggregator' });
    await expect(up({ load, log: () => undefined })).rejects.toThrow(/inference cannot boot/);
    expect(closed).toEqual(['telemetry', 'aggregator', 'registry']);
  });

  it('is started only when every service is ready; one that never is fails the boot with its reason, all stopped', async () => {
    const { closed, load } = fakeStack({ notReady: 'gateway' });
    await expect(up({ load, log: () => undefined, readyTimeoutMs: 300 })).rejects.toThrow(
      /the gateway service did not become ready within 0.3 s: HTTP 503 replaying edgefl.device.lifecycle.v1/,
    );
    expect(closed).toEqual([...SERVICES].reverse());
  });

  it('wires the services to each other: registry URL, admin token and JWKS; round results readable by the registry', () => {
    const env: Record<string, string | undefined> = {
      EDGEFL_DATA_DIR: '/srv/edgefl',
      REGISTRY_ROUND_ARTIFACT_PREFIXES: 'https://blobs.example/rounds/',
    };
    wireStack(env);
    expect(env['AGGREGATOR_ARTIFACT_DIR']).toBe('/srv/edgefl/round-results');
    expect(env['REGISTRY_ROUND_ARTIFACT_PREFIXES']).toBe(
      'https://blobs.example/rounds/,/srv/edgefl/round-results',
    );
    wireStack(env, { url: 'http://127.0.0.1:7104', adminToken: 'registry-admin-token-1' });
    expect(env).toMatchObject({
      AGGREGATOR_REGISTRY_URL: 'http://127.0.0.1:7104',
      AGGREGATOR_REGISTRY_TOKEN: 'registry-admin-token-1',
      GATEWAY_JWKS_URL: 'http://127.0.0.1:7104/v1/device-tokens/jwks.json',
      // listed once, however often the stack is wired
      REGISTRY_ROUND_ARTIFACT_PREFIXES: 'https://blobs.example/rounds/,/srv/edgefl/round-results',
    });
    const own = {
      AGGREGATOR_ARTIFACT_DIR: '/data/results',
      AGGREGATOR_REGISTRY_URL: 'http://registry.internal',
    };
    wireStack(own, { url: 'http://127.0.0.1:7104', adminToken: undefined });
    expect(own).toMatchObject({
      AGGREGATOR_REGISTRY_URL: 'http://registry.internal',
      REGISTRY_ROUND_ARTIFACT_PREFIXES: '/data/results',
    });
  });
});
