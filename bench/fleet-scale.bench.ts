// What one simulated device costs and how a fleet of 1,000 runs in one process (issue 17): the five services run in
// a second process (`edgefl up`, embedded stack); this process holds FLEET_BENCH_DEVICES real device-SDK devices
// (each its own key, registry token, MQTT connection, SQLite buffer and model store in a temporary directory), then
// runs one federated round with all of them and releases its result to 100 %. Peer, same run: as many bare mqtt.js
// clients holding an authenticated connection to the same gateway (the transport alone, no device runtime).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { buildOnnx, initWeights, mlp } from '@edgefl/model';
import { deviceTable, Fleet, loadDataset, partitionDataset } from '@edgefl/sim';
import { figure, writeReport } from './lib/report.ts';

const DEVICES = Number(process.env.FLEET_BENCH_DEVICES ?? 1000);
const CONCURRENCY = Number(process.env.FLEET_BENCH_START_CONCURRENCY ?? 16);
const ROUND = process.env.FLEET_BENCH_ROUND !== '0';
const MB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const rss = () => {
  gc();
  gc();
  return process.memoryUsage().rss;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

const dir = mkdtempSync(join(tmpdir(), 'edgefl-fleet-bench-'));
const adminToken = randomBytes(24).toString('base64url');
const aggregatorToken = randomBytes(24).toString('base64url');
const ports = Object.fromEntries(
  ['REGISTRY', 'AGGREGATOR', 'TELEMETRY', 'INFERENCE', 'GATEWAY'].map((s) => [`${s}_PORT`, '0']),
);
const stack = spawn(process.execPath, ['tools/cli/bin/edgefl.js', 'up', '--data-dir', join(dir, 'stack')], {
  env: {
    ...process.env,
    ...ports,
    LOG_LEVEL: 'warn',
    GATEWAY_MQTT_PORT: '0',
    REGISTRY_ADMIN_TOKEN: adminToken,
    AGGREGATOR_ADMIN_TOKEN: aggregatorToken,
    REGISTRY_MIN_SOAK_MS: '0',
    REGISTRY_MIN_DEVICES: '0',
    REGISTRY_ROLLOUT_TICK_MS: '200',
    // 1,000 devices share one loopback address: the per-connection limits stay as configured
  },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let stderr = '';
const urls: Record<string, string> = {};
await new Promise<void>((resolve, reject) => {
  stack.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const m of stderr.matchAll(/^edgefl (\w+) +(\S+:\/\/\S+)/gm)) urls[m[1]!] = m[2]!;
    if (/all services started/.test(stderr)) resolve();
  });
  stack.once('exit', (code) => reject(new Error(`edgefl up exited ${code}: ${stderr.slice(-2000)}`)));
});
const call = async <T>(
  base: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
  raw?: Uint8Array,
) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': raw ? 'application/octet-stream' : 'application/json',
    },
    ...(raw ? { body: Buffer.from(raw) } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
};
const registry = <T>(method: string, path: string, body?: unknown, raw?: Uint8Array) =>
  call<T>(urls['registry']!, adminToken, method, path, body, raw);
const aggregator = <T>(method: string, path: string, body?: unknown) =>
  call<T>(urls['aggregator']!, aggregatorToken, method, path, body);

const data = loadDataset({ name: 'fraud', seed: 1 });
const spec = mlp(data.train.cols, [64, 32], 1, 'sigmoid');
const partition = partitionDataset(data, { devices: DEVICES, seed: 1, minRows: 5 });
await registry('POST', '/v1/tenants', { id: 'bench', name: 'bench' });
await registry('POST', '/v1/tenants/bench/models', { id: 'fraud', name: 'fraud', spec, deltaWindow: 3 });
await registry('POST', '/v1/models/fraud/versions', undefined, buildOnnx(spec, initWeights(spec, 1, 0.1)));
await registry('PUT', '/v1/tenants/bench/baseline', { modelId: 'fraud', version: 1 });

const before = rss();
const startedAt = Date.now();
const fleet = await Fleet.start({
  registryUrl: urls['registry']!,
  mqttUrl: urls['mqtt']!,
  tenant: 'bench',
  modelId: 'fraud',
  adminToken,
  dataDir: join(dir, 'fleet'),
  devices: partition.rows.map((rows, i) => ({ id: `d-${i}`, train: deviceTable(data.train, rows) })),
  startConcurrency: CONCURRENCY,
  federated: { optimizer: 'sgd', compression: 'float16', seed: 1 },
  inference: { cloud: 'none' },
  heartbeatIntervalMs: 60_000,
  pollIntervalMs: 120_000,
});
const startSeconds = (Date.now() - startedAt) / 1000;
await sleep(2_000);
const held = rss();
const cost = fleet.cost();
console.log(
  `fleet: ${DEVICES} devices started in ${startSeconds.toFixed(1)} s, ${cost.connected} connected; RSS ${(before / MB).toFixed(0)} → ${(held / MB).toFixed(0)} MB; ${cost.fileDescriptors} fds, ${cost.sockets} sockets; load ${load()}`,
);

let roundSeconds: number | null = null;
let releaseSeconds: number | null = null;
let accepted = 0;
if (ROUND) {
  const ids = fleet.devices.map((d) => d.id);
  const t0 = Date.now();
  const round = await aggregator<{ roundId: string }>('POST', '/v1/rounds', {
    tenant: 'bench',
    modelId: 'fraud',
    baseVersion: 1,
    selectedDevices: ids,
    quorum: 0.95,
    graceMs: 5_000,
    deadline: Date.now() + 600_000,
    training: { localEpochs: 1, batchSize: 8, learningRate: 0.05 },
  });
  for (;;) {
    const r = await aggregator<{ state: string; counts: { accepted: number } }>(
      'GET',
      `/v1/rounds/${round.roundId}/report`,
    );
    accepted = r.counts.accepted;
    if (r.state === 'DONE' || r.state === 'FAILED') break;
    await sleep(500);
  }
  roundSeconds = (Date.now() - t0) / 1000;
  let version: number | undefined;
  while (version === undefined) {
    const list = await registry<Array<{ version: number; roundId: string | null }>>(
      'GET',
      '/v1/models/fraud/versions',
    );
    version = list.find((v) => v.roundId === round.roundId)?.version;
    await sleep(200);
  }
  const t1 = Date.now();
  await registry('POST', '/v1/models/fraud/releases', {
    version,
    stages: [100],
    gates: { minDevicesReporting: 0 },
  });
  while (!fleet.devices.every((d) => d.version === version)) await sleep(500);
  releaseSeconds = (Date.now() - t1) / 1000;
  console.log(
    `round: ${accepted}/${DEVICES} updates accepted, result in ${roundSeconds.toFixed(1)} s; v${version} on every device ${releaseSeconds.toFixed(1)} s after its release; load ${load()}`,
  );
}
const afterRound = rss();
const tokens = await Promise.all(fleet.devices.map((d) => d.device.registry.token()));
await fleet.stop();
await sleep(1_000);

// the peer, in a fresh process (this one keeps the fleet's freed memory): the same number of authenticated MQTT
// connections to the same gateway as bare mqtt.js clients, no device runtime
// the tokens go in a file: a thousand of them in the environment exceed what exec takes (E2BIG)
const peerFile = join(dir, 'peer.json');
writeFileSync(
  peerFile,
  JSON.stringify({
    url: urls['mqtt'],
    concurrency: CONCURRENCY,
    devices: fleet.devices.map((d, i) => ({ id: d.id, token: tokens[i] })),
  }),
);
const peer = spawn(
  process.execPath,
  [
    '--expose-gc',
    '--input-type=module',
    '-e',
    `
    import mqtt from "mqtt";
    import { readFileSync } from 'node:fs';
    const { url, devices, concurrency } = JSON.parse(readFileSync(process.env.PEER_FILE, 'utf8'));
    const rss = () => { globalThis.gc(); globalThis.gc(); return process.memoryUsage().rss; };
    const before = rss();
    const clients = [];
    for (let i = 0; i < devices.length; i += concurrency)
      clients.push(...(await Promise.all(devices.slice(i, i + concurrency).map((d) =>
        mqtt.connectAsync(url, { clientId: d.id, username: d.id, password: d.token, reconnectPeriod: 0, protocolVersion: 4 })))));
    await new Promise((r) => setTimeout(r, 2000));
    const held = rss();
    await Promise.all(clients.map((c) => c.endAsync()));
    process.stdout.write(JSON.stringify({ before, held, connected: clients.length }));
    process.exit(0);
    `,
  ],
  {
    env: { ...process.env, PEER_FILE: peerFile },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
let peerOut = '';
peer.stdout!.on('data', (c: Buffer) => (peerOut += c.toString()));
await new Promise((r) => peer.once('exit', r));
const bare = JSON.parse(peerOut) as { before: number; held: number };
const bareBefore = bare.before;
const bareHeld = bare.held;
stack.kill('SIGTERM');
await new Promise((r) => stack.once('exit', r));
rmSync(dir, { recursive: true, force: true });

const perDevice = (held - before) / DEVICES;
const perBare = (bareHeld - bareBefore) / DEVICES;
writeReport({
  name: 'fleet-scale',
  figures: [
    figure(`RSS per simulated device (${DEVICES} held)`, 'KB', perDevice / 1024, {
      name: 'bare authenticated mqtt.js client',
      value: perBare / 1024,
    }),
    figure(`fleet start, ${DEVICES} devices (${CONCURRENCY} at a time)`, 's', startSeconds),
    figure('file descriptors per device', 'fd', (cost.fileDescriptors ?? 0) / DEVICES),
    figure('sockets per device', 'sockets', (cost.sockets ?? 0) / DEVICES),
    ...(roundSeconds !== null
      ? [figure(`one round, ${DEVICES} devices: open → result`, 's', roundSeconds)]
      : []),
    ...(releaseSeconds !== null ? [figure(`release at 100 %: every device on it`, 's', releaseSeconds)] : []),
  ],
  notes: [
    `RSS after GC: ${(before / MB).toFixed(0)} MB before the fleet, ${(held / MB).toFixed(0)} MB holding it, ${(afterRound / MB).toFixed(0)} MB after a round and a release; bare clients ${(bareBefore / MB).toFixed(0)} → ${(bareHeld / MB).toFixed(0)} MB`,
    `${cost.fileDescriptors} file descriptors, ${cost.sockets} sockets in the fleet process (the HTTP client pools its connections to the registry)`,
    `round: ${accepted}/${DEVICES} updates accepted (quorum 95 %, grace 5 s)`,
    `load average at the end: ${load()} (2-core machine shared with other engineers)`,
  ],
});
process.exit(0);
