import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { expectProblem } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, call, deviceIdentity, startRegistry, type TestRegistry } from './helpers.js';

describe('registry tenants and device registry', () => {
  let registry: TestRegistry;
  let url: string;
  const device = deviceIdentity();

  beforeAll(async () => {
    registry = await startRegistry();
    url = registry.url;
    expect((await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' })).status).toBe(201);
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('creates tenants once and finds them', async () => {
    const again = await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    expectProblem(again, 409, 'https://edgefl.dev/problems/conflict');
    expect((await call(url, 'GET', '/v1/tenants/acme')).body).toMatchObject({
      id: 'acme',
      name: 'Acme',
      baseline: null,
    });
    expect((await call(url, 'GET', '/v1/tenants/nobody')).status).toBe(404);
  });

  it('answers bad bodies and ids with problem+json', async () => {
    const bad = await call(url, 'POST', '/v1/tenants', { id: '../etc', name: '' });
    expect(bad.status).toBe(422);
    expect(bad.body).toMatchObject({
      status: 422,
      errors: expect.arrayContaining([expect.objectContaining({ path: 'id' })]),
    });
    expect((await call(url, 'POST', '/v1/tenants', '{"id": ')).status).toBe(400);
    expect((await call(url, 'POST', '/v1/tenants', '[1]')).status).toBe(400);
    expect((await call(url, 'GET', '/v1/devices/bad%20id')).status).toBe(400);
  });

  it('registers a device with hardware attributes and refuses a bad key or a duplicate', async () => {
    const res = await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'pos-1',
      publicKey: device.publicKeyBase64,
      group: 'eu-west',
      hardware: {
        class: 'pos',
        ramBytes: 512 * 1024 * 1024,
        firmware: '2.3.1',
        attributes: { cpu: 'arm64' },
      },
    });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      id: 'pos-1',
      tenantId: 'acme',
      group: 'eu-west',
      hardwareClass: 'pos',
      firmware: '2.3.1',
    });
    const dup = await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'pos-1',
      publicKey: device.publicKeyBase64,
    });
    expect(dup.status).toBe(409);
    const badKey = await call(url, 'POST', '/v1/tenants/acme/devices', { id: 'pos-2', publicKey: 'AAAA' });
    expect(badKey.status).toBe(422);
    const noTenant = await call(url, 'POST', '/v1/tenants/none/devices', {
      id: 'pos-3',
      publicKey: device.publicKeyBase64,
    });
    expect(noTenant.status).toBe(404);
    const patched = await call(url, 'PATCH', '/v1/devices/pos-1', { group: 'eu-north' });
    expect(patched.body).toMatchObject({ group: 'eu-north', firmware: '2.3.1' });
  });

  it('issues a short-lived EdDSA JWT for a valid assertion, verifiable with the JWKS', async () => {
    const res = await call<{ token: string; expiresAt: number }>(url, 'POST', '/v1/devices/pos-1/token', {
      assertion: await device.assertion('pos-1'),
    });
    expect(res.status).toBe(200);
    const jwks = await call<{ keys: [] }>(url, 'GET', '/v1/device-tokens/jwks.json');
    const { payload, protectedHeader } = await jwtVerify(res.body.token, createLocalJWKSet(jwks.body), {
      issuer: 'edgefl-registry',
      audience: 'edgefl-mqtt',
    });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload).toMatchObject({
      sub: 'pos-1',
      tenant: 'acme',
      acl: { publish: ['edgefl/acme/pos-1/#'] },
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(900);
    expect(JSON.stringify(registry.logs.lines)).not.toContain(res.body.token);
  });

  it('refuses assertions signed by another key, for another device, for another audience, or replayed', async () => {
    const stranger = deviceIdentity();
    const tries = [
      await stranger.assertion('pos-1'),
      await device.assertion('pos-1', { sub: 'pos-9' }),
      await device.assertion('pos-1', { aud: 'someone-else' }),
      await device.assertion('pos-1', { expSeconds: 3600 }),
      'not-a-jwt',
    ];
    for (const assertion of tries) {
      const res = await call(url, 'POST', '/v1/devices/pos-1/token', { assertion });
      expectProblem(res, 401, 'https://edgefl.dev/problems/unauthorized');
    }
    const once = await device.assertion('pos-1', { jti: 'only-once' });
    expect((await call(url, 'POST', '/v1/devices/pos-1/token', { assertion: once })).status).toBe(200);
    expect((await call(url, 'POST', '/v1/devices/pos-1/token', { assertion: once })).status).toBe(401);
    expect((await call(url, 'POST', '/v1/devices/ghost/token', { assertion: once })).status).toBe(401);
  });

  it('serves its OpenAPI document', async () => {
    const doc = await call<{ openapi: string; paths: Record<string, unknown> }>(url, 'GET', '/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining(['/v1/tenants', '/v1/devices/{device}/token']),
    );
  });
});

describe('registry device auth (REGISTRY_DEVICE_AUTH=required)', () => {
  let registry: TestRegistry;
  let url: string;
  const mine = deviceIdentity();
  const other = deviceIdentity();
  let token = '';
  let otherToken = '';

  beforeAll(async () => {
    registry = await startRegistry({
      REGISTRY_DEVICE_AUTH: 'required',
      REGISTRY_MIN_SOAK_MS: '0',
      REGISTRY_MIN_DEVICES: '1',
    });
    url = registry.url;
    for (const tenant of ['acme', 'globex']) {
      await call(url, 'POST', '/v1/tenants', { id: tenant, name: tenant });
      await call(url, 'POST', `/v1/tenants/${tenant}/models`, {
        id: `${tenant}-model`,
        name: 'm',
        spec: FRAUD_MLP,
      });
      const res = await fetch(`${url}/v1/models/${tenant}-model/versions`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 1))),
      });
      expect(res.status).toBe(201);
      await call(url, 'PUT', `/v1/tenants/${tenant}/baseline`, { modelId: `${tenant}-model`, version: 1 });
    }
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id: 'a-1',
      publicKey: mine.publicKeyBase64,
      modelId: 'acme-model',
    });
    await call(url, 'POST', '/v1/tenants/globex/devices', {
      id: 'g-1',
      publicKey: other.publicKeyBase64,
      modelId: 'globex-model',
    });
    token = (
      await call<{ token: string }>(url, 'POST', '/v1/devices/a-1/token', {
        assertion: await mine.assertion('a-1'),
      })
    ).body.token;
    otherToken = (
      await call<{ token: string }>(url, 'POST', '/v1/devices/g-1/token', {
        assertion: await other.assertion('g-1'),
      })
    ).body.token;
  });
  afterAll(async () => {
    await registry?.stop();
  });

  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  it('needs a valid device token for manifests, and only for the device itself', async () => {
    expect((await call(url, 'GET', '/v1/devices/a-1/manifest')).status).toBe(401);
    expect((await call(url, 'GET', '/v1/devices/a-1/manifest', undefined, bearer('x.y.z'))).status).toBe(401);
    const tampered = `${token.slice(0, -4)}${token.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
    expect((await call(url, 'GET', '/v1/devices/a-1/manifest', undefined, bearer(tampered))).status).toBe(
      401,
    );
    expect((await call(url, 'GET', '/v1/devices/a-1/manifest', undefined, bearer(otherToken))).status).toBe(
      403,
    );
    const ok = await call(url, 'GET', '/v1/devices/a-1/manifest', undefined, bearer(token));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ modelId: 'acme-model', version: 1, reason: 'baseline' });
  });

  it("lets a device download only its tenant's artifacts", async () => {
    expect((await fetch(`${url}/v1/models/acme-model/versions/1/artifact`)).status).toBe(401);
    const theirs = await fetch(`${url}/v1/models/globex-model/versions/1/artifact`, {
      headers: bearer(token),
    });
    expect(theirs.status).toBe(403);
    await theirs.arrayBuffer();
    const ours = await fetch(`${url}/v1/models/acme-model/versions/1/artifact`, { headers: bearer(token) });
    expect(ours.status).toBe(200);
    await ours.arrayBuffer();
  });
});
