import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OtaStatus } from '@edgefl/contracts';
import {
  DeviceIdentity,
  ModelStore,
  OtaClient,
  RegistryClient,
  TrustStore,
  type OtaOutcome,
} from '@edgefl/device-sdk';
import { ed25519KeyId, FRAUD_MLP, mlp, sha256Hex, signManifest, type ReleaseManifest } from '@edgefl/model';
import { tempDir } from '@edgefl/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildCli } from './cli-process.js';
import {
  onnxOf,
  seedRegistry,
  startProxy,
  startRegistryProcess,
  versionWeights,
  type RegistryProcess,
} from './device-stack.js';

const TENANT = 'acme';
const MODEL = 'fraud';
const spec = FRAUD_MLP;
let registry: RegistryProcess;
let proxy: Awaited<ReturnType<typeof startProxy>>;
let dir: Awaited<ReturnType<typeof tempDir>>;
const identities = new Map<string, DeviceIdentity>();
const DEVICES = [
  'ota-1',
  'ota-2',
  'ota-3',
  'ota-4',
  'ota-5',
  'ota-6',
  'ota-7',
  'ota-8',
  'ota-9',
  'ota-10',
  'ota-11',
  'ota-12',
];
const v1 = onnxOf(spec, versionWeights(spec, 1, 0));
const v2 = onnxOf(spec, versionWeights(spec, 1, 1));
let v1Manifest: unknown;

interface TestDevice {
  ota: OtaClient;
  store: ModelStore;
  statuses: OtaStatus[];
  trust: TrustStore;
}

function device(
  id: string,
  options: { via?: string; now?: () => number; limits?: Record<string, number>; attempts?: number } = {},
): TestDevice {
  const data = join(dir.path, id);
  mkdirSync(data, { recursive: true });
  const identity = identities.get(id)!;
  const registryClient = new RegistryClient({ baseUrl: options.via ?? proxy.url, identity });
  const store = new ModelStore(join(data, 'models'));
  store.recover();
  const trust = new TrustStore(join(data, 'trust.json'));
  const statuses: OtaStatus[] = [];
  const ota = new OtaClient({
    device: { tenant: TENANT, deviceId: id, modelId: MODEL, hardwareClass: 'pos' },
    store,
    trust,
    registry: registryClient,
    report: (s) => statuses.push(s),
    ...(options.now ? { now: options.now } : {}),
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.attempts ? { attempts: options.attempts } : {}),
  });
  return { ota, store, statuses, trust };
}

async function pinned(id: string, options?: Parameters<typeof device>[1]): Promise<TestDevice> {
  const d = device(id, options);
  d.trust.pin(await (await fetch(`${registry.url}/v1/release-keys`)).json());
  return d;
}

/** A device on v1 (installed through the honest path). */
async function onV1(id: string, options?: Parameters<typeof device>[1]): Promise<TestDevice> {
  const d = await pinned(id, options);
  proxy.tamper = (req, up, res) => {
    if (req.url?.includes('/manifest')) {
      const body = JSON.parse(up.body.toString()) as { manifest: unknown };
      body.manifest = v1Manifest;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          ...body,
          version: 1,
          artifact: {
            url: `/v1/models/${MODEL}/versions/1/artifact`,
            sha256: sha256Hex(v1),
            sizeBytes: v1.byteLength,
          },
        }),
      );
      return true;
    }
    return false;
  };
  expect((await d.ota.checkForUpdate()).state).toBe('ACTIVE');
  proxy.tamper = null;
  d.statuses.length = 0;
  return d;
}

const failedWith = (outcome: OtaOutcome, code: string) => {
  expect(outcome).toMatchObject({ state: 'FAILED', code });
};
const lastStatus = (d: TestDevice) => d.statuses.at(-1)!;
const manifestAnswer = (
  fn: (body: {
    manifest: { signed: ReleaseManifest; signatures: Array<{ keyId: string; sig: string }> };
  }) => unknown,
) =>
  ((req, up, res) => {
    if (!req.url?.includes('/manifest') || up.status !== 200) return false;
    const body = JSON.parse(up.body.toString());
    const out = fn(body) ?? body;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
    return true;
  }) as typeof proxy.tamper;
const artifactBody = (
  fn: (
    body: Buffer,
    res: import('node:http').ServerResponse,
    up: { headers: Record<string, string> },
  ) => void,
) =>
  ((req, up, res) => {
    if (!req.url?.includes('/artifact') || up.status >= 300) return false;
    fn(up.body, res, up);
    return true;
  }) as typeof proxy.tamper;

beforeAll(async () => {
  buildCli();
  dir = await tempDir('edgefl-device-ota-');
  registry = await startRegistryProcess();
  for (const id of DEVICES)
    identities.set(id, DeviceIdentity.loadOrCreate(id, join(dir.path, 'keys', `${id}.pem`)));
  await seedRegistry(
    registry,
    MODEL,
    spec,
    DEVICES.map((id) => ({ id, publicKey: identities.get(id)!.publicKeyBase64 })),
  );
  expect(await registry.upload(MODEL, v1)).toBe(1);
  await registry.releaseStable(MODEL, 1);
  proxy = await startProxy(registry.url);
  const token = await new RegistryClient({
    baseUrl: registry.url,
    identity: identities.get('ota-1')!,
  }).token();
  const answer = await fetch(`${registry.url}/v1/devices/ota-1/manifest`, {
    headers: { authorization: `Bearer ${token}` },
  });
  v1Manifest = ((await answer.json()) as { manifest: unknown }).manifest;
  expect(await registry.upload(MODEL, v2)).toBe(2);
  await registry.release(MODEL, 2);
}, 240_000);

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
  await dir?.remove();
});

describe('OTA client against a real registry (REGISTRY_DEVICE_AUTH=required)', () => {
  beforeEach(() => {
    proxy.tamper = null;
  });

  it('needs the device token: the registry refuses an anonymous manifest request', async () => {
    expect((await fetch(`${registry.url}/v1/devices/ota-1/manifest`)).status).toBe(401);
  });

  it('installs the released version from scratch: PENDING → DOWNLOADING → VALIDATING → APPLYING → ACTIVE', async () => {
    const d = await pinned('ota-1');
    const outcome = await d.ota.checkForUpdate();
    expect(outcome).toMatchObject({
      state: 'ACTIVE',
      version: 2,
      viaDelta: false,
      bytesDownloaded: v2.byteLength,
    });
    expect(d.statuses.map((s) => s.state)).toEqual([
      'PENDING',
      'DOWNLOADING',
      'VALIDATING',
      'APPLYING',
      'ACTIVE',
    ]);
    expect(lastStatus(d)).toMatchObject({
      tenant: TENANT,
      deviceId: 'ota-1',
      modelId: MODEL,
      toVersion: 2,
      fromVersion: null,
    });
    expect(d.store.active).toMatchObject({ version: 2, sha256: sha256Hex(v2) });
    expect(await d.ota.checkForUpdate()).toMatchObject({ state: 'ACTIVE', version: 2, changed: false });
  });

  it('updates v1 → v2 by the delta the registry plans, fetching fewer bytes than the full artifact, and keeps v1 for rollback', async () => {
    const d = await onV1('ota-2');
    const outcome = await d.ota.checkForUpdate();
    expect(outcome).toMatchObject({ state: 'ACTIVE', version: 2, viaDelta: true });
    expect((outcome as { bytesDownloaded: number }).bytesDownloaded).toBeLessThan(v2.byteLength / 2);
    expect(d.store.active?.sha256).toBe(sha256Hex(v2));
    expect(d.store.previous?.version).toBe(1);
    expect(d.store.rollback()?.version).toBe(1);
  });

  it('TUF arbitrary installation (wrong signature): a tampered signature is refused with bad-signature', async () => {
    const d = await onV1('ota-3');
    proxy.tamper = manifestAnswer((b) => {
      const sig = b.manifest.signatures[0]!;
      sig.sig = `${sig.sig[0] === 'A' ? 'B' : 'A'}${sig.sig.slice(1)}`;
    });
    failedWith(await d.ota.checkForUpdate(), 'bad-signature');
    expect(lastStatus(d)).toMatchObject({ state: 'FAILED', errorCode: 'bad-signature' });
    expect(d.store.active?.version).toBe(1);
  });

  it('TUF arbitrary installation (signature by an unknown key): a manifest re-signed by another key is refused with unknown-key', async () => {
    const d = await onV1('ota-3');
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyId = ed25519KeyId(Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url'));
    const forged = await signManifest(
      { ...(v1Manifest as { signed: ReleaseManifest }).signed, version: 9 },
      async (bytes) => ({ keyId, signature: sign(null, bytes, privateKey) }),
    );
    proxy.tamper = manifestAnswer((b) => {
      b.manifest = forged as never;
    });
    failedWith(await d.ota.checkForUpdate(), 'unknown-key');
    expect(d.trust.keyIds).not.toContain(keyId);
    expect(d.store.active?.version).toBe(1);
  });

  it('TUF arbitrary installation (wrong hash): artifact bytes that differ from the signed sha256 are refused, nothing installed', async () => {
    const d = await pinned('ota-4');
    proxy.tamper = artifactBody((body, res, up) => {
      const copy = Buffer.from(body);
      copy[copy.length - 10]! ^= 0xff;
      res.writeHead(200, up.headers);
      res.end(copy);
    });
    failedWith(await d.ota.checkForUpdate(), 'hash-mismatch');
    expect(d.store.active).toBeNull();
  });

  it('TUF rollback attack: a validly signed but lower version is refused with rollback', async () => {
    const d = await pinned('ota-5');
    expect((await d.ota.checkForUpdate()).state).toBe('ACTIVE');
    proxy.tamper = manifestAnswer((b) => {
      b.manifest = v1Manifest as never;
    });
    failedWith(await d.ota.checkForUpdate(), 'rollback');
    expect(d.store.active?.version).toBe(2);
  });

  it('TUF freeze attack: an expired manifest is refused with expired', async () => {
    const d = await pinned('ota-6', { now: () => Date.now() + 8 * 24 * 3600_000 });
    failedWith(await d.ota.checkForUpdate(), 'expired');
    expect(d.store.active).toBeNull();
  });

  it('TUF mix-and-match: a signed manifest of another model is refused with wrong-model', async () => {
    const d = await onV1('ota-7');
    proxy.tamper = manifestAnswer((b) => {
      b.manifest = { ...b.manifest, signed: { ...b.manifest.signed, modelId: 'other' } } as never;
    });
    // re-pointing the model id breaks the registry's signature: the device says so
    failedWith(await d.ota.checkForUpdate(), 'bad-signature');
    const other = mlp(4, [3], 1, 'sigmoid');
    await registry.call('POST', `/v1/tenants/${TENANT}/models`, { id: 'other', name: 'other', spec: other });
    await registry.upload('other', onnxOf(other, versionWeights(other, 2, 0)));
    await registry.release('other', 1);
    const token = await new RegistryClient({
      baseUrl: registry.url,
      identity: identities.get('ota-7')!,
    }).token();
    const otherAnswer = (await (
      await fetch(`${registry.url}/v1/devices/ota-7/manifest?model=other`, {
        headers: { authorization: `Bearer ${token}` },
      })
    ).json()) as { manifest: unknown };
    proxy.tamper = manifestAnswer((b) => {
      b.manifest = otherAnswer.manifest as never;
    });
    failedWith(await d.ota.checkForUpdate(), 'wrong-model');
    expect(d.store.active?.version).toBe(1);
  });

  it('TUF endless data: a body longer than the signed length is cut off and refused with too-large', async () => {
    const d = await pinned('ota-8');
    proxy.tamper = artifactBody((body, res, up) => {
      const { 'content-length': _c, ...headers } = up.headers;
      res.writeHead(200, headers);
      res.write(body);
      res.end(Buffer.alloc(1 << 20, 7));
    });
    failedWith(await d.ota.checkForUpdate(), 'too-large');
    expect(d.store.active).toBeNull();
  });

  it('TUF slow retrieval: a trickling server is abandoned with slow-retrieval', async () => {
    const d = await pinned('ota-9', {
      limits: { minBytesPerSecond: 50_000, rateWindowMs: 300, rateGraceMs: 300, stallTimeoutMs: 5_000 },
      attempts: 1,
    });
    proxy.tamper = artifactBody((body, res, up) => {
      res.writeHead(200, up.headers);
      let at = 0;
      const timer = setInterval(() => {
        if (res.destroyed || at >= body.length) {
          clearInterval(timer);
          res.end();
          return;
        }
        res.write(body.subarray(at, at + 16));
        at += 16;
      }, 20);
      res.on('close', () => clearInterval(timer));
    });
    failedWith(await d.ota.checkForUpdate(), 'slow-retrieval');
    expect(d.store.active).toBeNull();
  });

  it('truncated downloads are resumed with Range from where they broke off, then verified', async () => {
    const d = await pinned('ota-10', { attempts: 1 });
    proxy.tamper = artifactBody((body, res, up) => {
      res.writeHead(200, up.headers);
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => res.destroy());
    });
    failedWith(await d.ota.checkForUpdate(), 'truncated');
    expect(d.store.active).toBeNull();
    proxy.tamper = null;
    proxy.requests.length = 0;
    const outcome = await d.ota.checkForUpdate();
    expect(outcome).toMatchObject({ state: 'ACTIVE', version: 2 });
    expect((outcome as { bytesDownloaded: number }).bytesDownloaded).toBeLessThan(v2.byteLength);
    expect(proxy.requests.some((r) => /\/artifact bytes=\d+-$/.test(r))).toBe(true);
  });

  it('a corrupted delta is refused (hash) and the device falls back to the full artifact, never running bad bytes', async () => {
    const d = await onV1('ota-11');
    proxy.tamper = ((req, up, res) => {
      if (!req.url?.includes('/deltas/') || up.status >= 300) return false;
      const copy = Buffer.from(up.body);
      copy[copy.length - 1]! ^= 0x5a;
      res.writeHead(up.status, up.headers);
      res.end(copy);
      return true;
    }) as typeof proxy.tamper;
    const outcome = await d.ota.checkForUpdate();
    expect(outcome).toMatchObject({ state: 'ACTIVE', version: 2, viaDelta: false });
    expect(d.statuses.find((s) => s.state === 'DOWNLOADING' && s.errorCode !== null)).toMatchObject({
      errorCode: 'hash-mismatch',
    });
    expect(d.store.active?.sha256).toBe(sha256Hex(v2));
  });
});
