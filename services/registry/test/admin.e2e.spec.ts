import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { describeOnBuses, expectProblem, tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADMIN_TOKEN_FILE } from '../src/openapi/openapi.js';
import { registryConfig } from '../src/config.js';
import {
  admin,
  ADMIN_TOKEN,
  call,
  deviceIdentity,
  startRegistry,
  startRegistryAt,
  type TestRegistry,
} from './helpers.js';

const none = { authorization: '' };
const wrong = { authorization: `Bearer ${ADMIN_TOKEN}x` };
const onnx = Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 3)));

describeOnBuses('registry management API: admin bearer token', () => {
  let registry: TestRegistry;
  let url: string;
  let releaseId: string;

  beforeAll(async () => {
    registry = await startRegistry();
    url = registry.url;
    expect((await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' })).status).toBe(201);
    await call(url, 'POST', '/v1/tenants/acme/models', { id: 'fraud', name: 'Fraud', spec: FRAUD_MLP });
    const up = await fetch(`${url}/v1/models/fraud/versions`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/octet-stream' },
      body: onnx,
    });
    expect(up.status).toBe(201);
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'pos-1',
      publicKey: deviceIdentity().publicKeyBase64,
      modelId: 'fraud',
    });
    const rel = await call<{ id: string }>(url, 'POST', '/v1/models/fraud/releases', {
      version: 1,
      stages: [100],
      start: false,
    });
    expect(rel.status).toBe(201);
    releaseId = rel.body.id;
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  const managementRoutes = (): Array<[string, string, unknown?]> => [
    ['POST', '/v1/tenants', { id: 'other', name: 'Other' }],
    ['GET', '/v1/tenants'],
    ['GET', '/v1/tenants/acme'],
    ['PUT', '/v1/tenants/acme/baseline', { modelId: 'fraud', version: 1 }],
    ['POST', '/v1/tenants/acme/models', { id: 'm2', name: 'M2' }],
    ['GET', '/v1/tenants/acme/models'],
    ['GET', '/v1/models/fraud'],
    ['POST', '/v1/models/fraud/versions', { weights: [] }],
    ['GET', '/v1/models/fraud/versions'],
    ['GET', '/v1/models/fraud/versions/1'],
    ['POST', '/v1/models/fraud/versions/1/deprecate'],
    ['POST', '/v1/tenants/acme/devices', { id: 'pos-2', publicKey: deviceIdentity().publicKeyBase64 }],
    ['GET', '/v1/tenants/acme/devices'],
    ['GET', '/v1/devices/pos-1'],
    ['PATCH', '/v1/devices/pos-1', { group: 'eu' }],
    ['POST', '/v1/models/fraud/releases', { version: 1 }],
    ['GET', '/v1/releases'],
    ['GET', `/v1/releases/${releaseId}`],
    ['POST', `/v1/releases/${releaseId}/start`],
    ['POST', `/v1/releases/${releaseId}/pause`, {}],
    ['POST', `/v1/releases/${releaseId}/resume`],
    ['POST', `/v1/releases/${releaseId}/abort`, {}],
    [
      'POST',
      `/v1/releases/${releaseId}/health`,
      {
        stage: 'full',
        windowStart: 0,
        windowEnd: 1,
        devicesReporting: 1,
        otaFailureRate: 0,
        inferenceErrorRate: 0,
        p95LatencyMs: 1,
        meanConfidence: 0.9,
        driftScore: 0,
      },
    ],
    ['POST', '/v1/devices/pos-1/ota-status', { modelId: 'fraud', toVersion: 1, state: 'ACTIVE' }],
  ];

  it('answers every management route without a token with 401 problem+json and WWW-Authenticate: Bearer', async () => {
    for (const [method, path, body] of managementRoutes()) {
      const res = await call<{ status: number; detail: string }>(url, method, path, body, none);
      expectProblem(res, 401, 'https://edgefl.dev/problems/unauthorized');
      expect(res.body.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
    }
  });

  it('refuses a wrong token, another scheme and a malformed header the same way', async () => {
    for (const headers of [wrong, { authorization: `Basic ${ADMIN_TOKEN}` }, { authorization: 'Bearer' }]) {
      for (const [method, path, body] of managementRoutes()) {
        const res = await call(url, method, path, body, headers);
        expect(res.status, `${method} ${path} ${headers.authorization.slice(0, 6)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
    }
    // nothing happened: the tenant was not created, the release did not move
    expect((await call(url, 'GET', '/v1/tenants/other')).status).toBe(404);
    expect((await call<{ state: string }>(url, 'GET', `/v1/releases/${releaseId}`)).body.state).toBe(
      'PENDING',
    );
  });

  it('lets the admin token through', async () => {
    expect((await call(url, 'GET', '/v1/tenants')).status).toBe(200);
    expect((await call(url, 'GET', `/v1/releases/${releaseId}`)).status).toBe(200);
    const lower = await call(url, 'GET', '/v1/tenants', undefined, {
      authorization: `bearer ${ADMIN_TOKEN}`,
    });
    expect(lower.status).toBe(200); // the scheme name is case-insensitive (RFC 9110 §11.1)
  });

  it('keeps device-facing routes as they were (no admin token needed)', async () => {
    expect((await call(url, 'GET', '/v1/release-keys', undefined, none)).status).toBe(200);
    expect((await call(url, 'GET', '/v1/device-tokens/jwks.json', undefined, none)).status).toBe(200);
    expect((await fetch(`${url}/v1/models/fraud/versions/1/artifact`)).status).toBe(200);
    expect((await call(url, 'GET', '/v1/models/fraud/versions/1/delta?from=1', undefined, none)).status).toBe(
      200,
    );
    // nothing released yet: "nothing to install" from the manifest logic, not 401
    expect((await call(url, 'GET', '/v1/devices/pos-1/manifest', undefined, none)).body).toMatchObject({
      reason: 'nothing-to-install',
    });
    expect(
      (await call(url, 'POST', '/v1/devices/pos-1/token', { assertion: 'not-a-jwt' }, none)).status,
    ).not.toBe(404);
  });

  it('never writes the token into a log line', () => {
    expect(registry.logs.lines.join('\n')).not.toContain(ADMIN_TOKEN);
  });

  it('documents the bearer scheme in OpenAPI on management routes only', async () => {
    const doc = await call<{
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      paths: Record<string, Record<string, { security?: Array<Record<string, unknown>> }>>;
    }>(url, 'GET', '/openapi.json', undefined, none);
    expect(doc.body.components.securitySchemes['admin']).toMatchObject({ type: 'http', scheme: 'bearer' });
    const secured = (path: string, method: string) =>
      (doc.body.paths[path]?.[method]?.security ?? []).some((s) => 'admin' in s);
    expect(secured('/v1/tenants', 'post')).toBe(true);
    expect(secured('/v1/models/{model}/releases', 'post')).toBe(true);
    expect(secured('/v1/releases/{release}/abort', 'post')).toBe(true);
    expect(secured('/v1/devices/{device}/manifest', 'get')).toBe(false);
    expect(secured('/v1/models/{model}/versions/{version}/artifact', 'get')).toBe(false);
    expect(secured('/v1/release-keys', 'get')).toBe(false);
  });
});

describeOnBuses('registry admin token configuration', () => {
  it('is a secret: a bad value is refused without being echoed, and is scrubbed from logs', () => {
    const weak = 'short-secret';
    let message = '';
    try {
      registryConfig.load({ REGISTRY_ADMIN_TOKEN: weak });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/REGISTRY_ADMIN_TOKEN/);
    expect(message).not.toContain(weak);
    const good = 'a-strong-admin-token-0123456789';
    const config = registryConfig.load({ REGISTRY_ADMIN_TOKEN: good });
    expect(config.own.adminToken).toBe(good);
    expect(config.secrets).toContain(good);
    expect(registryConfig.load({ REGISTRY_ADMIN_TOKEN: '' }).own.adminToken).toBeUndefined();
  });

  it('generates a token at first boot, keeps it 0600 under the data dir, logs only where it is', async () => {
    const dir = await tempDir('edgefl-registry-admin-');
    try {
      const first = await startRegistryAt(dir.path, { REGISTRY_ADMIN_TOKEN: '' });
      const path = join(dir.path, ADMIN_TOKEN_FILE);
      const token = (await readFile(path, 'utf8')).trim();
      let second: Awaited<ReturnType<typeof startRegistryAt>> | null = null;
      let firstStopped = false;
      try {
        expect(token.length).toBeGreaterThanOrEqual(32);
        expect((await stat(path)).mode & 0o777).toBe(0o600);
        const logs = first.logs.lines.join('\n');
        expect(logs).toContain(path);
        expect(logs).not.toContain(token);
        const bearer = { authorization: `Bearer ${token}` };
        expect((await call(first.url, 'GET', '/v1/tenants', undefined, bearer)).status).toBe(200);
        expect((await call(first.url, 'GET', '/v1/tenants', undefined, none)).status).toBe(401);
        expect((await call(first.url, 'GET', '/v1/tenants')).status).toBe(401); // the test token is not it
        await first.stop();
        firstStopped = true;
        // a restart on the same data keeps the token
        second = await startRegistryAt(dir.path, { REGISTRY_ADMIN_TOKEN: '' });
        expect((await readFile(path, 'utf8')).trim()).toBe(token);
        expect((await call(second.url, 'GET', '/v1/tenants', undefined, bearer)).status).toBe(200);
        expect(second.logs.lines.join('\n')).not.toContain(token);
      } finally {
        if (!firstStopped) await first.stop();
        await second?.stop();
      }
    } finally {
      await dir.remove();
    }
  }, 60_000);
});
