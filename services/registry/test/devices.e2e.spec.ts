import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describeOnBuses, expectProblem } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  admin,
  call,
  deviceIdentity,
  startRegistry,
  startSecureRegistry,
  type TestRegistry,
} from './helpers.js';

describeOnBuses('registry tenants and device registry', () => {
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

  it('refuses JSON bodies with ill-formed Unicode: a lone surrogate escape or invalid UTF-8 bytes', async () => {
    const post = (body: string | Buffer) =>
      fetch(`${url}/v1/tenants`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/json' },
        body,
      });
    for (const body of [
      '{"id":"bad1","name":"x\\ud800"}',
      '{"id":"bad2","name":"x","\\udc00":1}',
      Buffer.concat([Buffer.from('{"id":"bad3","name":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]),
    ]) {
      const res = await post(body);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(JSON.stringify(await res.json())).toMatch(/UTF-8|Unicode/);
    }
    for (const id of ['bad1', 'bad2', 'bad3'])
      expect((await call(url, 'GET', `/v1/tenants/${id}`)).status).toBe(404);
    // well-formed astral characters pass
    const ok = await post('{"id":"astral","name":"rocket \\ud83d\\ude80"}');
    expect(ok.status).toBe(201);
    expect(((await ok.json()) as { name: string }).name).toBe('rocket \u{1F680}');
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
    // hardware.attributes are replaced as a whole (they were ignored before)
    const attrs = await call(url, 'PATCH', '/v1/devices/pos-1', {
      hardware: { attributes: { npu: 'none' } },
    });
    expect(attrs.body).toMatchObject({ group: 'eu-north', attributes: { npu: 'none' } });
    expect((await call(url, 'GET', '/v1/devices/pos-1')).body).toMatchObject({ attributes: { npu: 'none' } });
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

describeOnBuses('registry device auth (required by default)', () => {
  let registry: TestRegistry;
  let url: string;
  const mine = deviceIdentity();
  const other = deviceIdentity();
  let token = '';
  let otherToken = '';

  beforeAll(async () => {
    // no REGISTRY_DEVICE_AUTH: the default must be secure
    registry = await startSecureRegistry({
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

  it("lets the platform's services download any tenant's artifact with the management token", async () => {
    for (const model of ['acme-model', 'globex-model']) {
      const res = await fetch(`${url}/v1/models/${model}/versions/1/artifact`, { headers: admin });
      expect(res.status).toBe(200);
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(0);
    }
    const wrong = await fetch(`${url}/v1/models/acme-model/versions/1/artifact`, {
      headers: bearer('not-the-admin-token-at-all'),
    });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();
  });

  const newToken = async (id: string, identity: ReturnType<typeof deviceIdentity>) =>
    call<{ token: string }>(url, 'POST', `/v1/devices/${id}/token`, {
      assertion: await identity.assertion(id),
    });

  it('rotates a key with proof of the old key: earlier tokens and the old key stop working', async () => {
    const id = 'a-rot';
    const old = deviceIdentity();
    const next = deviceIdentity();
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id,
      publicKey: old.publicKeyBase64,
      modelId: 'acme-model',
    });
    const before = (await newToken(id, old)).body.token;
    expect((await call(url, 'GET', `/v1/devices/${id}/manifest`, undefined, bearer(before))).status).toBe(
      200,
    );
    // neither anonymous nor with another device's proof
    const anonymous = await call(
      url,
      'POST',
      `/v1/devices/${id}/rotate-key`,
      { publicKey: next.publicKeyBase64 },
      { authorization: '' },
    );
    expectProblem(anonymous, 401, 'https://edgefl.dev/problems/unauthorized');
    const forged = await call(
      url,
      'POST',
      `/v1/devices/${id}/rotate-key`,
      { publicKey: next.publicKeyBase64, assertion: await next.assertion(id) },
      { authorization: '' },
    );
    expect(forged.status).toBe(401);
    const proof = await old.assertion(id);
    const rotated = await call<{ publicKey: string; tokensNotBefore: number }>(
      url,
      'POST',
      `/v1/devices/${id}/rotate-key`,
      { publicKey: next.publicKeyBase64, assertion: proof },
      { authorization: '' },
    );
    expect(rotated.status).toBe(200);
    expect(rotated.body.publicKey).toBe(next.publicKeyBase64);
    expect(rotated.body.tokensNotBefore).toBeGreaterThan(0);
    // the proof works once
    const replay = await call(
      url,
      'POST',
      `/v1/devices/${id}/rotate-key`,
      { publicKey: old.publicKeyBase64, assertion: proof },
      { authorization: '' },
    );
    expect(replay.status).toBe(401);
    // the token issued before the rotation is refused by the registry itself
    expect((await call(url, 'GET', `/v1/devices/${id}/manifest`, undefined, bearer(before))).status).toBe(
      401,
    );
    expect((await newToken(id, old)).status).toBe(401);
    const after = await newToken(id, next);
    expect(after.status).toBe(200);
    expect(
      (await call(url, 'GET', `/v1/devices/${id}/manifest`, undefined, bearer(after.body.token))).status,
    ).toBe(200);
    // an admin may re-key without the device's proof
    const byAdmin = await call(url, 'POST', `/v1/devices/${id}/rotate-key`, {
      publicKey: old.publicKeyBase64,
    });
    expect(byAdmin.status).toBe(200);
    expect(
      (await call(url, 'GET', `/v1/devices/${id}/manifest`, undefined, bearer(after.body.token))).status,
    ).toBe(401);
  });

  it('revokes a device: held tokens are refused, no new token is issued, revoking twice is a conflict', async () => {
    const id = 'a-rev';
    const identity = deviceIdentity();
    await call(url, 'POST', '/v1/tenants/acme/devices', {
      id,
      publicKey: identity.publicKeyBase64,
      modelId: 'acme-model',
    });
    const held = (await newToken(id, identity)).body.token;
    expect(
      (
        await fetch(`${url}/v1/models/acme-model/versions/1/artifact`, {
          method: 'HEAD',
          headers: bearer(held),
        })
      ).status,
    ).toBe(200);
    const anonymous = await call(url, 'POST', `/v1/devices/${id}/revoke`, {}, { authorization: '' });
    expect(anonymous.status).toBe(401);
    const revoked = await call<{ revokedAt: number; revokeReason: string }>(
      url,
      'POST',
      `/v1/devices/${id}/revoke`,
      {
        reason: 'reported stolen',
      },
    );
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ revokeReason: 'reported stolen' });
    expect(revoked.body.revokedAt).toBeGreaterThan(0);
    expect((await call(url, 'GET', `/v1/devices/${id}/manifest`, undefined, bearer(held))).status).toBe(401);
    expect(
      (
        await fetch(`${url}/v1/models/acme-model/versions/1/artifact`, {
          method: 'HEAD',
          headers: bearer(held),
        })
      ).status,
    ).toBe(401);
    expect((await newToken(id, identity)).status).toBe(401);
    expectProblem(
      await call(url, 'POST', `/v1/devices/${id}/revoke`, {}),
      409,
      'https://edgefl.dev/problems/conflict',
    );
    expect(
      (
        await call(url, 'POST', `/v1/devices/${id}/rotate-key`, {
          publicKey: deviceIdentity().publicKeyBase64,
        })
      ).status,
    ).toBe(409);
    expect((await call(url, 'POST', '/v1/devices/nobody/revoke', {})).status).toBe(404);
  });
});

describeOnBuses('registry device auth opt-out', () => {
  it('serves manifests without a token only when REGISTRY_DEVICE_AUTH=off, and says so in the log', async () => {
    const registry = await startRegistry();
    try {
      expect(registry.logs.lines.join('\n')).toContain('REGISTRY_DEVICE_AUTH=off');
      const { url } = registry;
      await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
      await call(url, 'POST', '/v1/tenants/acme/models', { id: 'm', name: 'm', spec: FRAUD_MLP });
      await fetch(`${url}/v1/models/m/versions`, {
        method: 'POST',
        headers: { ...admin, 'content-type': 'application/octet-stream' },
        body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 1))),
      });
      await call(url, 'PUT', '/v1/tenants/acme/baseline', { modelId: 'm', version: 1 });
      await call(registry.url, 'POST', '/v1/tenants/acme/devices', {
        id: 'd',
        publicKey: deviceIdentity().publicKeyBase64,
        modelId: 'm',
      });
      // served without any token
      expect(
        (await call(registry.url, 'GET', '/v1/devices/d/manifest', undefined, { authorization: '' })).status,
      ).toBe(200);
    } finally {
      await registry.stop();
    }
  });
});
