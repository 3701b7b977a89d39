// Registry manifest endpoint: GET /v1/devices/{id}/manifest (rollout assignment by hash + targeting + compatibility
// window, signed libs/model manifest) under autocannon running in a second process, rotating over 1,000 registered
// devices while a release of v2 sits in its 10% stage (so answers differ per device: rollout vs stable).
// Peer, same run, same client settings, same body: a bare node:http server answering with a constant JSON string
// of the same size — the ceiling of any Node HTTP service on this machine.
// Target (issue): >= 5,000 req/s with p99 < 10 ms.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { Ed25519SigningKey } from '@edgefl/keys';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { bootstrap } from '@edgefl/registry';
import { freePort, runJsonChild } from './lib/process.ts';
import { adminCall } from './lib/http.ts';
import { figure, writeReport } from './lib/report.ts';

const SECONDS = Number(process.env.REGISTRY_BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.REGISTRY_BENCH_CONNECTIONS ?? 10);
const DEVICES = 1000;

interface LoadResult {
  requests: number;
  rps: number;
  latency: { p50: number; p90: number; p99: number; max: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** Runs the load generator as a child process (async: the registry in this process must keep serving). */
function load(baseUrl: string, template: string, ids: string[], seconds: number): Promise<LoadResult> {
  const args = [baseUrl, String(seconds), String(CONNECTIONS), template, ids.join(',')];
  return runJsonChild(join(import.meta.dirname, 'registry', 'load.ts'), args, 'load generator');
}

/** The management API's token (set below); the manifest route under load needs none. */
const ADMIN_TOKEN = `bench-admin-${randomUUID()}`;
const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

const call = (base: string, method: string, path: string, body?: unknown) =>
  adminCall(ADMIN_TOKEN, base, method, path, body);

const dir = mkdtempSync(join(tmpdir(), 'edgefl-registry-bench-'));
const registry = await bootstrap({
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    EDGEFL_DATA_DIR: dir,
    LOG_LEVEL: 'warn',
    REGISTRY_MIN_SOAK_MS: '0',
    REGISTRY_MIN_DEVICES: '1',
    REGISTRY_ROLLOUT_TICK_MS: '200',
    REGISTRY_ADMIN_TOKEN: ADMIN_TOKEN,
    // the figure is the manifest path itself, comparable with earlier results: device auth opted out
    REGISTRY_DEVICE_AUTH: 'off',
  },
  shutdownHooks: false,
  logDestination: { write: () => undefined },
});
const peerServer = createServer();
try {
  const base = registry.url;
  await call(base, 'POST', '/v1/tenants', { id: 'bench', name: 'Bench' });
  await call(base, 'POST', '/v1/tenants/bench/models', { id: 'fraud', name: 'Fraud', spec: FRAUD_MLP });
  for (const seed of [1, 2]) {
    const res = await fetch(`${base}/v1/models/fraud/versions`, {
      method: 'POST',
      headers: { ...ADMIN, 'content-type': 'application/octet-stream' },
      body: Buffer.from(buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, seed))),
    });
    if (res.status !== 201) throw new Error(`upload: ${res.status}`);
  }
  const first = await call(base, 'POST', '/v1/models/fraud/releases', { version: 1, stages: [100] });
  // a stage completes only once a device installed it: one installer device reports v1 ACTIVE
  await call(base, 'POST', '/v1/tenants/bench/devices', {
    id: 'installer',
    publicKey: Buffer.from(Ed25519SigningKey.generate().publicKey).toString('base64'),
    modelId: 'fraud',
  });
  await call(base, 'GET', '/v1/devices/installer/manifest');
  await call(base, 'POST', '/v1/devices/installer/ota-status', {
    modelId: 'fraud',
    releaseId: String(first['id']),
    toVersion: 1,
    state: 'ACTIVE',
  });
  await call(base, 'POST', `/v1/releases/${String(first['id'])}/health`, {
    stage: 'full',
    windowStart: Date.now() - 1000,
    windowEnd: Date.now(),
    devicesReporting: 5,
    otaFailureRate: 0,
    inferenceErrorRate: 0,
    p95LatencyMs: 3,
    meanConfidence: 0.9,
    driftScore: 0,
  });
  for (let i = 0; i < 100; i++) {
    if ((await call(base, 'GET', `/v1/releases/${String(first['id'])}`))['state'] === 'COMPLETED') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await call(base, 'POST', '/v1/models/fraud/releases', {
    version: 2,
    stages: [10, 100],
    gates: { minSoakMs: 3_600_000 },
  });
  const key = Buffer.from(Ed25519SigningKey.generate().publicKey).toString('base64');
  const ids = Array.from({ length: DEVICES }, (_, i) => `bench-${i}`);
  for (let i = 0; i < ids.length; i += 100) {
    await Promise.all(
      ids
        .slice(i, i + 100)
        .map((id) =>
          call(base, 'POST', '/v1/tenants/bench/devices', { id, publicKey: key, modelId: 'fraud' }),
        ),
    );
  }
  // Setup leaves work behind: registering 1,000 devices queued 1,000 lifecycle events in the outbox. Measure the
  // manifest path once the relay has published them, not the relay racing the load.
  const outbox = new DatabaseSync(join(dir, 'registry.sqlite'), { readOnly: true });
  const pending = () =>
    (outbox.prepare('SELECT count(*) AS n FROM outbox WHERE published_at IS NULL').get() as { n: number }).n;
  for (let waited = 0; pending() > 0 && waited < 60_000; waited += 100)
    await new Promise((r) => setTimeout(r, 100));
  outbox.close();
  const sample = await (await fetch(`${base}/v1/devices/bench-0/manifest`)).text();
  let inRollout = 0;
  for (const id of ids)
    if (
      (JSON.parse(await (await fetch(`${base}/v1/devices/${id}/manifest`)).text()) as { version: number })
        .version === 2
    )
      inRollout++;

  peerServer.on('request', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(sample);
  });
  await new Promise<void>((resolve) => peerServer.listen(0, '127.0.0.1', resolve));
  const peerBase = `http://127.0.0.1:${(peerServer.address() as { port: number }).port}`;

  await load(base, '/v1/devices/{id}/manifest', ids, 2); // warm-up
  const cpuBefore = process.cpuUsage();
  const ours = await load(base, '/v1/devices/{id}/manifest', ids, SECONDS);
  const cpu = process.cpuUsage(cpuBefore);
  const peerCpuBefore = process.cpuUsage();
  const peer = await load(peerBase, '/v1/devices/{id}/manifest', ids, SECONDS);
  const peerCpu = process.cpuUsage(peerCpuBefore);
  // CPU time the server process spent per request: far steadier than requests/s on a shared machine
  const cpuPerRequest = (cpu.user + cpu.system) / ours.requests;
  const peerCpuPerRequest = (peerCpu.user + peerCpu.system) / peer.requests;
  if (ours.non2xx > 0 || ours.errors > 0)
    throw new Error(`registry answered ${ours.non2xx} non-2xx and ${ours.errors} errors`);

  writeReport({
    name: 'registry-manifest',
    figures: [
      figure('manifest requests/s', 'req/s', ours.rps, {
        name: 'bare node:http, constant body',
        value: peer.rps,
      }),
      figure('server CPU per manifest request', 'us', cpuPerRequest, {
        name: 'bare node:http, constant body',
        value: peerCpuPerRequest,
      }),
      figure('manifest p99 latency', 'ms', ours.latency.p99, {
        name: 'bare node:http, constant body',
        value: peer.latency.p99,
      }),
      figure('manifest p50 latency', 'ms', ours.latency.p50, {
        name: 'bare node:http, constant body',
        value: peer.latency.p50,
      }),
    ],
    notes: [
      `target: >= 5,000 req/s with p99 < 10 ms -> ${ours.rps >= 5000 && ours.latency.p99 < 10 ? 'met' : 'NOT met'}`,
      `autocannon in a second process, ${CONNECTIONS} connections, ${SECONDS} s, ${DEVICES} devices rotated; release v2 in its 10% stage (${inRollout} of ${DEVICES} devices get v2)`,
      `manifest body ${Buffer.byteLength(sample)} bytes; ${ours.requests} requests, ${ours.non2xx} non-2xx, ${ours.errors} errors`,
      'client and server share the machine (2 cores); the peer bounds what any Node HTTP service can do here',
      'autocannon reports latency in whole milliseconds',
    ],
  });
} finally {
  peerServer.close();
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
}
