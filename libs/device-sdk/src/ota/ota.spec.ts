import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addSignature,
  buildChunkTree,
  buildOnnx,
  ed25519KeyId,
  forward,
  FRAUD_MLP,
  initWeights,
  sha256Hex,
  signManifest,
  type ManifestSigner,
  type ReleaseManifest,
} from '@edgefl/model';
import { afterAll, describe, expect, it } from 'vitest';
import { OtaError } from '../errors.js';
import { DeviceIdentity } from '../identity.js';
import { RegistryClient, type ReleaseKey } from '../registry-client.js';
import { ModelStore } from './model-store.js';
import { OtaClient } from './ota-client.js';
import { TrustStore } from './trust.js';
import { validateModel } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-ota-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function releaseKey(): { signer: ManifestSigner; key: ReleaseKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const keyId = ed25519KeyId(raw);
  return {
    key: { keyId, version: 1, publicKey: raw.toString('base64'), createdAt: new Date().toISOString() },
    signer: async (bytes) => ({ keyId, signature: new Uint8Array(sign(null, bytes, privateKey)) }),
  };
}

const weights = initWeights(FRAUD_MLP, 4, 0.2);
const onnx = buildOnnx(FRAUD_MLP, weights);
const tree = buildChunkTree(onnx);
function manifest(overrides: Partial<ReleaseManifest> = {}): ReleaseManifest {
  return {
    _type: 'edgefl.release-manifest',
    specVersion: 1,
    modelId: 'fraud',
    version: 3,
    label: 'v3',
    created: new Date(Date.now() - 1000).toISOString(),
    expires: new Date(Date.now() + 3600_000).toISOString(),
    parentVersion: null,
    artifact: {
      format: 'onnx',
      size: onnx.byteLength,
      sha256: sha256Hex(onnx),
      chunkSize: tree.chunkSize,
      merkleRoot: tree.root,
    },
    provenance: { roundId: null, participants: 0, dp: null, metrics: {} },
    targeting: { tenants: ['acme'], cohorts: [] },
    hardwareClasses: [],
    deltas: [],
    ...overrides,
  };
}

let n = 0;
function client(offered: ReleaseKey[], pinned: ReleaseKey[], hardwareClass = 'pos') {
  const path = join(dir, `d${n++}`);
  const trust = new TrustStore(join(path, 'trust.json'));
  trust.pin(pinned);
  const identity = DeviceIdentity.loadOrCreate('d', join(path, 'key.pem'));
  // the registry's release-keys endpoint, as an injected transport (the rotation rule must not trust it alone)
  const fetch = (async () =>
    new Response(JSON.stringify(offered), {
      headers: { 'content-type': 'application/json' },
    })) as typeof globalThis.fetch;
  const registry = new RegistryClient({ baseUrl: 'http://registry.invalid', identity, fetch });
  const ota = new OtaClient({
    device: { tenant: 'acme', deviceId: 'd', modelId: 'fraud', hardwareClass },
    store: new ModelStore(join(path, 'models')),
    trust,
    registry,
    report: () => {},
  });
  return { ota, trust };
}

const code = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (error) {
    expect(error).toBeInstanceOf(Error);
    return (error as OtaError).code ?? (error as { reason?: string }).reason;
  }
  return 'accepted';
};

describe('release keys: pinned at provisioning, rotation as the manifest format allows', () => {
  const old = releaseKey();
  const next = releaseKey();

  it('learns a new key only from a manifest the pinned key also signed (co-signed rotation), then accepts it alone', async () => {
    const { ota, trust } = client([old.key, next.key], [old.key]);
    const both = await addSignature(await signManifest(manifest(), old.signer), next.signer);
    expect(await code(ota.verify(JSON.parse(JSON.stringify(both))))).toBe('accepted');
    expect(trust.keyIds.sort()).toEqual([old.key.keyId, next.key.keyId].sort());
    expect(await code(ota.verify(await signManifest(manifest({ version: 4 }), next.signer)))).toBe(
      'accepted',
    );
  });

  it('refuses (unknown-key) a manifest signed only by a key the device never pinned, whatever the release-keys endpoint offers', async () => {
    const { ota, trust } = client([old.key, next.key], [old.key]);
    expect(await code(ota.verify(await signManifest(manifest(), next.signer)))).toBe('unknown-key');
    expect(trust.keyIds).toEqual([old.key.keyId]);
  });

  it('TUF mix-and-match: refuses a manifest for another tenant (wrong-tenant) or hardware class (wrong-hardware)', async () => {
    const { ota } = client([], [old.key]);
    expect(
      await code(
        ota.verify(
          await signManifest(manifest({ targeting: { tenants: ['globex'], cohorts: [] } }), old.signer),
        ),
      ),
    ).toBe('wrong-tenant');
    expect(
      await code(ota.verify(await signManifest(manifest({ hardwareClasses: ['kiosk'] }), old.signer))),
    ).toBe('wrong-hardware');
    expect(
      await code(ota.verify(await signManifest(manifest({ hardwareClasses: ['kiosk', 'pos'] }), old.signer))),
    ).toBe('accepted');
  });

  it('refuses an artifact that would not fit the disk budget before downloading it', async () => {
    const { ota } = client([], [old.key]);
    const huge = manifest({ artifact: { ...manifest().artifact, size: 2 ** 40 } });
    expect(await code(ota.verify(await signManifest(huge, old.signer)))).toBe('disk-budget');
  });
});

describe('validation inference', () => {
  const inputs = [
    Array.from({ length: 30 }, (_, i) => Math.cos(i)),
    Array.from({ length: 30 }, (_, i) => i / 30),
  ];
  const outputs = [...forward(FRAUD_MLP, weights, Float32Array.from(inputs.flat()), 2)].map((v) => [v]);

  it('accepts a model whose outputs agree with the manifest canary within its tolerance', async () => {
    const { model, report } = await validateModel(
      manifest({ canary: { inputs, outputs, tolerance: 1e-5 } }),
      onnx,
    );
    expect(report.rows).toBe(2);
    expect(report.maxAbsError!).toBeLessThanOrEqual(1e-5);
    await model.session.release();
  });

  it('refuses a model that disagrees with the canary, one of the wrong shape, and bytes that are not a model', async () => {
    const wrong = outputs.map(([v]) => [v! + 0.1]);
    expect(
      await code(validateModel(manifest({ canary: { inputs, outputs: wrong, tolerance: 1e-3 } }), onnx)),
    ).toBe('validation-failed');
    expect(
      await code(
        validateModel(manifest({ canary: { inputs: [[1, 2]], outputs: [[0.5]], tolerance: 1e-3 } }), onnx),
      ),
    ).toBe('validation-failed');
    expect(await code(validateModel(manifest(), new Uint8Array([8, 8, 58, 0])))).toBe('validation-failed');
  });

  it('without canary inputs, runs seeded probes: finite outputs in the head range pass', async () => {
    const { model, report } = await validateModel(manifest(), onnx);
    expect(report).toEqual({ rows: 8, maxAbsError: null });
    await model.session.release();
  });
});

describe('model store', () => {
  it('after a crash, an active file that no longer matches its sha256 is replaced by the previous version', () => {
    const path = join(dir, 'store');
    const store = new ModelStore(path);
    const a = new Uint8Array([1, 2, 3]);
    const b = new Uint8Array([4, 5, 6, 7]);
    store.install(
      { modelId: 'm', version: 1, sha256: sha256Hex(a), sizeBytes: 3, format: 'onnx', releaseId: null },
      a,
      1,
    );
    const v2 = store.install(
      { modelId: 'm', version: 2, sha256: sha256Hex(b), sizeBytes: 4, format: 'onnx', releaseId: null },
      b,
      2,
    );
    writeFileSync(store.pathOf(v2), new Uint8Array([9, 9, 9, 9])); // bit rot
    writeFileSync(join(path, 'm-v9-leftover.onnx.tmp'), 'x');
    const again = new ModelStore(path).recover();
    expect(again.active?.version).toBe(1);
    expect(again.rolledBack?.from.version).toBe(2);
    expect(again.removed).toContain('m-v9-leftover.onnx.tmp');
  });
});
