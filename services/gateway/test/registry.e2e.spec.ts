// Against the real registry, started as a child process from its build (services never import each other): a device
// registered there gets its token over HTTP, and the gateway verifies it with the registry's JWKS.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Ed25519SigningKey } from '@edgefl/keys';
import { describeOnBuses, freePort, tempDir } from '@edgefl/testing';
import {
  connackCode,
  connectDevice,
  eventually,
  startGateway,
  subscribeCodes,
  type TestGateway,
  expectBridged,
} from './harness.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const REGISTRY_MAIN = `${root}services/registry/dist/main.js`;
const ADMIN = `gateway-test-admin-${randomUUID()}`;

describeOnBuses('gateway with the real registry (tokens and JWKS over HTTP)', () => {
  let registry: ChildProcess;
  let registryUrl: string;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let gw: TestGateway;
  const device = Ed25519SigningKey.generate();
  const tenant = `reg-${randomUUID().slice(0, 8)}`;
  const deviceId = `dev-${randomUUID().slice(0, 8)}`;

  const admin = (method: string, path: string, body?: unknown) =>
    fetch(`${registryUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: body === undefined ? null : JSON.stringify(body),
    });

  async function deviceToken(): Promise<string> {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(deviceId)
      .setAudience('edgefl-registry')
      .setIssuedAt()
      .setExpirationTime('60s')
      .setJti(randomUUID())
      .sign(createPrivateKey(device.exportPem()));
    const res = await fetch(`${registryUrl}/v1/devices/${deviceId}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ assertion }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { token: string }).token;
  }

  beforeAll(async () => {
    if (!existsSync(REGISTRY_MAIN))
      execFileSync('npx', ['nx', 'run', 'registry:build'], { cwd: root, stdio: 'ignore' });
    dir = await tempDir('edgefl-gw-reg-');
    const port = await freePort();
    registryUrl = `http://127.0.0.1:${port}`;
    registry = spawn(process.execPath, [REGISTRY_MAIN], {
      cwd: root,
      env: {
        PATH: process.env['PATH'],
        HOST: '127.0.0.1',
        PORT: String(port),
        EDGEFL_DATA_DIR: dir.path,
        REGISTRY_ADMIN_TOKEN: ADMIN,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    await eventually(
      'the registry is ready',
      async () => (await fetch(`${registryUrl}/health/ready`).catch(() => undefined))?.ok,
      60_000,
    );
    expect((await admin('POST', '/v1/tenants', { id: tenant, name: tenant })).status).toBe(201);
    const registered = await admin('POST', `/v1/tenants/${tenant}/devices`, {
      id: deviceId,
      publicKey: Buffer.from(device.publicKey).toString('base64'),
    });
    expect(registered.status).toBe(201);
    const jwks = `${registryUrl}/v1/device-tokens/jwks.json`;
    gw = await startGateway(jwks);
  }, 180_000);

  afterAll(async () => {
    await gw?.stop();
    registry?.kill('SIGTERM');
    await new Promise((resolve) =>
      registry?.exitCode !== null ? resolve(null) : registry.once('exit', resolve),
    );
    await dir?.remove();
  });

  it('accepts the registry-issued token, and the device publishes and subscribes within its own subtree only', async () => {
    const token = await deviceToken();
    const client = await connectDevice(gw.gateway.mqttUrl, deviceId, token);
    await expectBridged(gw, client, tenant, deviceId, 'telemetry');
    expect(
      await subscribeCodes(client, [
        `edgefl/${tenant}/${deviceId}/#`,
        `edgefl/${tenant}/broadcast/#`,
        `edgefl/other/${deviceId}/#`,
      ]),
    ).toEqual([1, 1, 128]);
    await client.endAsync();
  });

  it('refuses the same token under another username, and a token altered by one byte', async () => {
    const token = await deviceToken();
    expect(
      await connackCode(gw.gateway.mqttUrl, { clientId: 'someone', username: 'someone', password: token }),
    ).toBe(4);
    const altered = `${token.slice(0, -2)}${token.endsWith('AA') ? 'BB' : 'AA'}`;
    expect(
      await connackCode(gw.gateway.mqttUrl, { clientId: deviceId, username: deviceId, password: altered }),
    ).toBe(4);
  });
});
