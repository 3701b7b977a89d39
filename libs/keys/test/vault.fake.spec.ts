import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, thrownBy } from '@edgefl/testing';
import { createKeyProvider, KeyError, seal } from '../src/index.js';
import { VaultKeyProvider } from '../src/vault/index.js';
import { SEAL_KEY_CACHE_ENTRIES } from '../src/vault/vault-key-provider.js';
import { keyProviderContract } from './key-provider.contract.js';
import { startFakeVault, type FakeVault } from './fake-vault.js';

// The adapter's HTTP plumbing against an in-process stand-in of the Vault API (see fake-vault.ts).
// The same contract against a real Vault is vault.contract.spec.ts.
keyProviderContract('vault adapter against a fake of the Vault HTTP API', async () => {
  const fake = await startFakeVault();
  return {
    open: () => createKeyProvider({ kind: 'vault', endpoint: fake.endpoint, token: fake.token }),
    secrets: async () => fake.secrets(),
    cleanup: fake.close,
  };
});

/** The code of the KeyError an action threw, and every way the error prints (to check what it shows and hides). */
async function failureOf(action: Promise<unknown>): Promise<{ code: string; text: string }> {
  const thrown = await thrownBy(KeyError, action);
  if (!('error' in thrown)) return { code: thrown.code, text: '' };
  const error = thrown.error as Error;
  return { code: thrown.code, text: [error.message, JSON.stringify(error), inspect(error)].join('\n') };
}

describe('vault adapter failure handling (fake Vault)', () => {
  let fake: FakeVault;
  beforeAll(async () => {
    fake = await startFakeVault();
  });
  afterAll(() => fake.close());

  it('maps an unavailable Vault to BACKEND_UNAVAILABLE and an unhealthy health()', async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    await keys.createSigningKey('svc');
    fake.failNext(1);
    const failed = await failureOf(keys.sign('svc', 'x'));
    expect(failed.code).toBe('BACKEND_UNAVAILABLE');
    expect(failed.text).toContain('503');
    expect((await keys.sign('svc', 'x')).version).toBe(1); // recovers
    fake.failNext(1);
    expect((await keys.health()).ok).toBe(false);
    expect((await keys.health()).ok).toBe(true);
    await keys.close();
  });

  it('reports a refused token without echoing it', async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: 'hvs.wrong-token-value' });
    const failed = await failureOf(keys.createSigningKey('svc'));
    expect(failed.code).toBe('BACKEND_UNAVAILABLE');
    expect(failed.text).toContain('permission denied');
    expect(failed.text).not.toContain('wrong-token-value');
    const health = await keys.health();
    expect(health.ok).toBe(false);
    expect(health.detail).not.toContain('wrong-token-value');
  });

  it('reports an unreachable Vault without leaking the token or request', async () => {
    const keys = await VaultKeyProvider.connect({
      endpoint: 'http://127.0.0.1:9',
      token: fake.token,
      requestTimeoutMs: 2_000,
    });
    const failed = await failureOf(keys.sign('svc', 'plaintext-that-must-not-leak'));
    expect(failed.code).toBe('BACKEND_UNAVAILABLE');
    expect(failed.text).not.toContain(fake.token);
    expect(failed.text).not.toContain('plaintext-that-must-not-leak');
    expect(JSON.stringify(keys)).not.toContain(fake.token);
    expect(inspect(keys, { showHidden: true, depth: 10 })).not.toContain(fake.token);
  });

  it("maps versions below the key's minimum to KEY_DISABLED and skips them when no version is given", async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    await keys.createSigningKey('retiring');
    const old = await keys.sign('retiring', 'm');
    await keys.rotate('retiring');
    await keys.createKeyEncryptionKey('retiring-kek');
    const dk = await keys.generateDataKey('retiring-kek');
    await keys.rotate('retiring-kek');
    fake.setMinDecryptionVersion('retiring', 2);
    fake.setMinDecryptionVersion('retiring-kek', 2);
    expect(await codeOf(KeyError, keys.verify('retiring', 'm', old.signature, 1))).toBe('KEY_DISABLED');
    expect(await keys.verify('retiring', 'm', old.signature)).toBe(false);
    expect(await codeOf(KeyError, keys.unwrapDataKey('retiring-kek', dk.wrapped))).toBe('KEY_DISABLED');
    await keys.close();
  });

  it('serves opens of one round key from one KV read, and forgets it on delete', async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    const round = await keys.createSealKey('round-7');
    const other = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    // A second aggregator replica racing to create the same round key gets the same key (KV check-and-set).
    expect((await other.createSealKey('round-7')).keyId).toBe(round.keyId);
    await keys.deleteSealKey('round-7');
    expect(await codeOf(KeyError, keys.sealPublicKey('round-7'))).toBe('UNKNOWN_KEY');
    await Promise.all([keys.close(), other.close()]);
  });

  it('keeps a bounded number of seal keys: an evicted one is read from KV again on its next open', async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    const names = Array.from({ length: SEAL_KEY_CACHE_ENTRIES + 1 }, (_, i) => `bounded-${i}`);
    const publics = new Map<string, Uint8Array>();
    for (const name of names) publics.set(name, (await keys.createSealKey(name)).publicKey);
    const reads = (name: string) =>
      fake.requests().filter((r) => r === `GET secret/data/edgefl/hpke/${name}`).length;
    const sealedTo = (name: string) => seal(publics.get(name)!, `update for ${name}`, { info: 'round' });

    // Creating one more key than the cache holds evicted the least recently used: the first.
    fake.clearRequests();
    const first = names[0]!;
    const last = names.at(-1)!;
    expect(Buffer.from(await keys.open(first, await sealedTo(first), 'round')).toString()).toBe(
      `update for ${first}`,
    );
    expect(reads(first)).toBe(1);
    // now cached again: further opens cost no read
    await keys.open(first, await sealedTo(first), 'round');
    expect(reads(first)).toBe(1);
    // re-reading the first evicted the next least recently used (the second), not the most recent (the last)
    await keys.open(last, await sealedTo(last), 'round');
    expect(reads(last)).toBe(0);
    await keys.open(names[1]!, await sealedTo(names[1]!), 'round');
    expect(reads(names[1]!)).toBe(1);
    await Promise.all(names.map((name) => keys.deleteSealKey(name)));
    await keys.close();
  });

  it('verifies without reading the transit key each time, and sees a rotation made elsewhere', async () => {
    const keys = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    const other = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    await keys.createSigningKey('cached');
    const first = await keys.sign('cached', 'm');
    const count = (request: string) => fake.requests().filter((r) => r === request).length;

    fake.clearRequests();
    for (let i = 0; i < 3; i++) {
      expect(await keys.verify('cached', 'm', first.signature)).toBe(true);
      expect(await keys.verify('cached', 'm', first.signature, 1)).toBe(true);
    }
    // Vault still decides every verification, but the key's public versions come from the cache.
    expect(fake.requests()).toEqual(Array.from({ length: 6 }, () => 'POST transit/verify/cached'));

    // Another replica rotates and signs with version 2, which this one has never seen: it reads the key once.
    await other.rotate('cached');
    const second = await other.sign('cached', 'n');
    expect(second.version).toBe(2);
    fake.clearRequests();
    expect(await keys.verify('cached', 'n', second.signature)).toBe(true);
    expect(await keys.verify('cached', 'n', second.signature, 2)).toBe(true);
    expect(await keys.verify('cached', 'n', second.signature, 1)).toBe(false);
    expect(count('GET transit/keys/cached')).toBe(1);
    expect((await keys.sign('cached', 'o')).version).toBe(2);
    expect(await codeOf(KeyError, keys.verify('cached', 'n', second.signature, 3))).toBe('UNKNOWN_KEY');

    // A signature no version matches is refused without asking Vault to verify it.
    fake.clearRequests();
    const forged = new Uint8Array(second.signature);
    forged[0]! ^= 1;
    expect(await keys.verify('cached', 'n', forged)).toBe(false);
    expect(count('POST transit/verify/cached')).toBe(0);

    // Concurrent first uses share one read of the key.
    const cold = await VaultKeyProvider.connect({ endpoint: fake.endpoint, token: fake.token });
    fake.clearRequests();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => cold.verify('cached', 'm', first.signature)),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(count('GET transit/keys/cached')).toBe(1);

    // A kek is still refused as a signing key.
    await keys.createKeyEncryptionKey('cached-kek');
    expect(await codeOf(KeyError, keys.verify('cached-kek', 'm', first.signature))).toBe('KEY_TYPE_MISMATCH');
    await Promise.all([keys.close(), other.close(), cold.close()]);
  });
});
