import { randomBytes } from 'node:crypto';
// Test-only import (libs/testing is never shipped to devices); the runtime:edge rule is about shipped code.
import { announceSkip, dockerEngineAnswers, vaultFromEnv } from '@edgefl/testing';
import { createKeyProvider } from '../src/index.js';
import { keyProviderContract } from './key-provider.contract.js';

// The KeyProvider contract against a real Vault: VAULT_ADDR + VAULT_TOKEN, else a dev-mode container when a Docker
// engine answers, else one SKIPPED line. Each run mounts its own transit and KV v2 engines and removes them after.
const SUITE = 'vault contract suite';
const fromEnv = await vaultFromEnv();
const docker = fromEnv.available ? false : await dockerEngineAnswers();
const enabled = fromEnv.available || docker;
if (!enabled) {
  announceSkip(SUITE, `${fromEnv.available ? '' : fromEnv.why}; no Docker engine answers for testcontainers`);
}

async function vaultApi(
  endpoint: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(new URL(`/v1/${path}`, endpoint), {
    method,
    headers: { 'X-Vault-Token': token, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
}

keyProviderContract(
  SUITE,
  async () => {
    let endpoint: string;
    let token: string;
    let stopContainer = async () => {};
    if (fromEnv.available) {
      ({ endpoint, token } = fromEnv.target);
    } else {
      const { VaultContainer } = await import('@testcontainers/vault');
      token = `root-${randomBytes(8).toString('hex')}`;
      const container = await new VaultContainer('hashicorp/vault:1.17.6').withVaultToken(token).start();
      endpoint = container.getAddress();
      stopContainer = async () => {
        await container.stop();
      };
    }
    const suffix = randomBytes(4).toString('hex');
    const transitMount = `edgefl-test-transit-${suffix}`;
    const kvMount = `edgefl-test-kv-${suffix}`;
    for (const [path, body] of [
      [transitMount, { type: 'transit' }],
      [kvMount, { type: 'kv', options: { version: '2' } }],
    ] as const) {
      const res = await vaultApi(endpoint, token, 'POST', `sys/mounts/${path}`, body);
      if (!res.ok) throw new Error(`cannot mount ${path} (HTTP ${res.status}); the token needs sys/mounts`);
    }
    // A fresh KV v2 mount upgrades itself before it accepts writes.
    for (let i = 0; ; i++) {
      const res = await vaultApi(endpoint, token, 'POST', `${kvMount}/data/probe`, { data: { ok: true } });
      if (res.ok) break;
      if (i > 50) throw new Error(`KV v2 mount ${kvMount} does not accept writes (HTTP ${res.status})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return {
      open: () => createKeyProvider({ kind: 'vault', endpoint, token, transitMount, kvMount }),
      async secrets() {
        const out = [token];
        const list = await vaultApi(endpoint, token, 'GET', `${kvMount}/metadata/edgefl/hpke?list=true`);
        const names = list.ok ? ((await list.json()) as { data: { keys: string[] } }).data.keys : [];
        for (const name of names) {
          const res = await vaultApi(endpoint, token, 'GET', `${kvMount}/data/edgefl/hpke/${name}`);
          if (res.ok)
            out.push(((await res.json()) as { data: { data: { privateKey: string } } }).data.data.privateKey);
        }
        return out;
      },
      async cleanup() {
        for (const path of [transitMount, kvMount])
          await vaultApi(endpoint, token, 'DELETE', `sys/mounts/${path}`).catch(() => undefined);
        await stopContainer();
      },
    };
  },
  enabled,
);
