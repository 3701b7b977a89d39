import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceError } from './errors.js';
import { DeviceIdentity } from './identity.js';
import { RegistryClient } from './registry-client.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-registry-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const identity = DeviceIdentity.loadOrCreate('d-1', join(dir, 'd-1.pem'));

/** What undici throws when the pooled connection it picked was closed by the server. */
const socketError = (code: string) =>
  Object.assign(new TypeError('fetch failed'), {
    cause: Object.assign(new Error('other side closed'), { code }),
  });

function client(failures: unknown[]) {
  const calls: string[] = [];
  const fetch = (async (url: string | URL | Request) => {
    calls.push(String(url));
    const failure = failures.shift();
    if (failure) throw failure;
    return new Response(JSON.stringify({ token: 'jwt', expiresAt: Date.now() + 900_000 }), {
      headers: { 'content-type': 'application/json' },
    });
  }) as typeof globalThis.fetch;
  return { registry: new RegistryClient({ baseUrl: 'http://registry.invalid', identity, fetch }), calls };
}

describe('registry client transport errors', () => {
  it('sends once more on a new connection when the pooled one was closed under it', async () => {
    const { registry, calls } = client([socketError('UND_ERR_SOCKET')]);
    expect(await registry.token()).toBe('jwt');
    expect(calls).toHaveLength(2);
  });

  it('does not retry twice, nor other failures, and names the cause', async () => {
    const twice = client([socketError('ECONNRESET'), socketError('ECONNRESET')]);
    await expect(twice.registry.token()).rejects.toThrow(
      /POST \/v1\/devices\/d-1\/token: fetch failed \(other side closed\)/,
    );
    expect(twice.calls).toHaveLength(2);
    const refused = client([socketError('ECONNREFUSED')]);
    await expect(refused.registry.token()).rejects.toBeInstanceOf(DeviceError);
    expect(refused.calls).toHaveLength(1);
  });
});
