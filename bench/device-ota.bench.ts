// OTA: manifest-to-ACTIVE time and bytes for the "5 MB model" (DESIGN.md §8: 1280 → 1024 → 1, N(0, 0.02), seeded)
// updated by a delta vs by a full download, through the SDK's OtaClient against a real registry in this process
// (device auth required): manifest, delta plan, download (Range-capable), sha256, validation inference on
// onnxruntime, atomic install. The new version is a fine-tune of 2% of the weights (as bench/model-delta). Peer,
// same run: the same device code with deltas turned off (full artifact). Each figure is the median of RUNS updates
// (a fresh copy of a device on v1 each time).
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  DeviceIdentity,
  ModelStore,
  OtaClient,
  RegistryClient,
  TrustStore,
  type ReleaseKey,
} from '@edgefl/device-sdk';
import { buildOnnx, FIVE_MB_MODEL, initWeights, SeededRng } from '@edgefl/model';
import { bootstrap } from '@edgefl/registry';
import { figure, writeReport } from './lib/report.ts';

const RUNS = Number(process.env.DEVICE_OTA_RUNS ?? 5);
const ADMIN = `bench-${randomUUID()}`;
const dir = mkdtempSync(join(tmpdir(), 'edgefl-bench-ota-'));
const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});
const registry = await bootstrap({
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(port),
    EDGEFL_DATA_DIR: join(dir, 'registry'),
    LOG_LEVEL: 'warn',
    REGISTRY_MIN_SOAK_MS: '0',
    REGISTRY_MIN_DEVICES: '0',
    REGISTRY_ROLLOUT_TICK_MS: '100',
    REGISTRY_ADMIN_TOKEN: ADMIN,
    REGISTRY_DEVICE_AUTH: 'required',
  },
  shutdownHooks: false,
  logDestination: { write: () => {} },
});
const url = registry.url;
const admin = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${ADMIN}`,
      ...(body instanceof Uint8Array
        ? { 'content-type': 'application/octet-stream' }
        : { 'content-type': 'application/json' }),
    },
    ...(body !== undefined
      ? { body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body) }
      : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
};

const spec = FIVE_MB_MODEL;
const base = initWeights(spec, 20261124);
const tuned = base.map((t) => ({ ...t, data: t.data.slice() }));
const rng = new SeededRng(7);
for (const t of tuned)
  for (let i = 0; i < t.data.length; i++)
    if (rng.nextUint32() % 50 === 0)
      t.data[i] = t.data[i]! * (1 + 1e-3 * rng.normal()) + (t.data[i] === 0 ? 2e-5 * rng.normal() : 0);
const v1 = buildOnnx(spec, base);
const v2 = buildOnnx(spec, tuned);

const identity = DeviceIdentity.loadOrCreate('bench-ota', join(dir, 'device.pem'));
await admin('POST', '/v1/tenants', { id: 'acme', name: 'acme' });
await admin('POST', '/v1/tenants/acme/models', { id: 'five-mb', name: 'five-mb', spec, deltaWindow: 3 });
await admin('POST', '/v1/tenants/acme/devices', {
  id: 'bench-ota',
  publicKey: identity.publicKeyBase64,
  modelId: 'five-mb',
});
await admin('POST', '/v1/models/five-mb/versions', v1);
const r1 = await admin('POST', '/v1/models/five-mb/releases', { version: 1, stages: [100] });
await admin('POST', `/v1/releases/${r1.id}/health`, {
  stage: 'full',
  windowStart: Date.now() - 60_000,
  windowEnd: Date.now(),
  devicesReporting: 1,
  otaFailureRate: 0,
  inferenceErrorRate: 0,
  p95LatencyMs: 1,
  accuracy: 0.9,
  meanConfidence: 0.9,
  driftScore: 0,
});
while ((await admin('GET', `/v1/releases/${r1.id}`)).state !== 'COMPLETED')
  await new Promise((r) => setTimeout(r, 50));

function device(path: string, useDeltas: boolean) {
  const store = new ModelStore(join(path, 'models'));
  store.recover();
  return new OtaClient({
    device: { tenant: 'acme', deviceId: 'bench-ota', modelId: 'five-mb' },
    store,
    trust: new TrustStore(join(path, 'trust.json')),
    registry: new RegistryClient({ baseUrl: url, identity }),
    report: () => {},
    useDeltas,
  });
}
const template = join(dir, 'template');
new TrustStore(join(template, 'trust.json')).pin(
  (await (await fetch(`${url}/v1/release-keys`)).json()) as ReleaseKey[],
);
const first = await device(template, true).checkForUpdate();
if (first.state !== 'ACTIVE') throw new Error(`v1 install: ${JSON.stringify(first)}`);
await admin('POST', '/v1/models/five-mb/versions', v2);
await admin('POST', '/v1/models/five-mb/releases', { version: 2, stages: [100] });

const results: Record<'delta' | 'full', { ms: number[]; bytes: number }> = {
  delta: { ms: [], bytes: 0 },
  full: { ms: [], bytes: 0 },
};
for (let run = 0; run < RUNS; run++) {
  for (const kind of ['delta', 'full'] as const) {
    const path = join(dir, `${kind}-${run}`);
    cpSync(template, path, { recursive: true });
    const ota = device(path, kind === 'delta');
    const t = performance.now();
    const outcome = await ota.checkForUpdate();
    const ms = performance.now() - t;
    if (outcome.state !== 'ACTIVE' || outcome.version !== 2 || outcome.viaDelta !== (kind === 'delta'))
      throw new Error(`${kind}: ${JSON.stringify(outcome)}`);
    results[kind].ms.push(ms);
    results[kind].bytes = outcome.bytesDownloaded;
    rmSync(path, { recursive: true, force: true });
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
writeReport({
  name: 'device-ota',
  figures: [
    figure('5 MB model v1 → v2 (2% fine-tune): manifest to ACTIVE', 'ms', median(results.delta.ms), {
      name: 'full download, same device code',
      value: median(results.full.ms),
    }),
    figure('bytes downloaded', 'bytes', results.delta.bytes, {
      name: 'full download',
      value: results.full.bytes,
    }),
  ],
  notes: [
    `artifact ${v2.byteLength} bytes; ${RUNS} updates each, medians; all times in ms: delta ${results.delta.ms.map((m) => m.toFixed(0)).join(', ')}; full ${results.full.ms.map((m) => m.toFixed(0)).join(', ')}`,
    'both include the manifest request, the TUF checks, validation inference on onnxruntime (model load + 8 probe rows) and the durable install (fsync); the registry runs in this process (loopback)',
  ],
});
await registry.close();
rmSync(dir, { recursive: true, force: true });
