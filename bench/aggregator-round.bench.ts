// Aggregator round: time from quorum to the published RoundResult for CLIENTS sealed, signed updates of ~D float32
// parameters (FedAvg; Multi-Krum on KRUM_CLIENTS), next to libs/fl's bare functions on the same updates in the same
// run (the ratio is the service's overhead: opening the seals again, reading the store, adding the base, publishing).
// Also: updates ingested per second from the bus (every intake check, the store write), and the aggregator
// process's peak RSS (VmHWM) during the FedAvg round next to n·d·4 bytes (it must stay O(d)).
// The aggregator runs as its own process (services/aggregator/dist) so its memory is its own.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogBus, createBus, createSchemaRegistry } from '@edgefl/bus';
import { createFedAvgAccumulator, createSeededUniform, encodeFloat32, multiKrum } from '@edgefl/fl';
import { Ed25519SigningKey, encodeSealed, seal } from '@edgefl/keys';
import { buildOnnx, initWeights, mlp, parameterCount } from '@edgefl/model';
import { figure, writeReport } from './lib/report.ts';

const CLIENTS = Number(process.env.AGG_BENCH_CLIENTS ?? 1000);
const KRUM_CLIENTS = Number(process.env.AGG_BENCH_KRUM_CLIENTS ?? 200);
const SPEC = mlp(390, [256], 1, 'sigmoid'); // 100,353 parameters
const D = parameterCount(SPEC);
const TOKEN = `bench-admin-${randomUUID()}`;
const BASE = initWeights(SPEC, 1);
const dir = mkdtempSync(join(tmpdir(), 'edgefl-agg-bench-'));

const onnx = Buffer.from(buildOnnx(SPEC, BASE));
const registry = createServer((req, res) => {
  const ok = req.url === '/v1/models/m/versions/1/artifact';
  res.writeHead(ok ? 200 : 404);
  res.end(ok ? onnx : undefined);
});
await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
/** A port the OS says is free (bench code may not use the test harness). */
const port = await new Promise<number>((resolve) => {
  const probe = createTcpServer().listen(0, '127.0.0.1', () => {
    const { port: p } = probe.address() as AddressInfo;
    probe.close(() => resolve(p));
  });
});
const url = `http://127.0.0.1:${port}`;
const child = spawn(process.execPath, [join(import.meta.dirname, '..', 'services/aggregator/dist/main.js')], {
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(port),
    EDGEFL_DATA_DIR: dir,
    LOG_LEVEL: 'warn',
    AGGREGATOR_ADMIN_TOKEN: TOKEN,
    AGGREGATOR_TICK_MS: '20',
    AGGREGATOR_REGISTRY_URL: `http://127.0.0.1:${(registry.address() as AddressInfo).port}`,
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 600_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('bench timed out');
    await sleep(10);
  }
}
const api = async (method: string, path: string, body?: unknown) => {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
  return json;
};
await until(async () => ((await fetch(`${url}/health/ready`).catch(() => null))?.ok ? true : undefined));

const busPath = join(dir, 'bus.sqlite');
const bus = await createBus({ adapter: 'embedded', path: busPath });
const typed = catalogBus(bus, createSchemaRegistry({ kind: 'embedded', path: busPath }));
const results = new Map<string, number>();
const roundKeys = new Map<string, Uint8Array>();
await typed.subscribe({
  group: 'bench-observer',
  topics: ['edgefl.fl.round.v1'],
  fromBeginning: true,
  handler: (r) => {
    const e = r.value.event;
    if ('io.edgefl.fl.RoundResult' in e) results.set(r.value.roundId, Date.now());
    if ('io.edgefl.fl.RoundOpened' in e)
      roundKeys.set(
        r.value.roundId,
        new Uint8Array(e['io.edgefl.fl.RoundOpened'].secureAggregation.roundPublicKey!),
      );
  },
});
const devices = Array.from({ length: CLIENTS }, (_, i) => ({
  id: `b${i}`,
  key: Ed25519SigningKey.generate(),
}));
await typed.publish(
  'edgefl.device.lifecycle.v1',
  devices.map((d) => ({
    value: {
      eventId: randomUUID(),
      tenant: 'acme',
      deviceId: d.id,
      event: 'REGISTERED' as const,
      publicKey: Buffer.from(d.key.publicKey).toString('base64url'),
      keyId: d.key.keyId,
      previousKeyId: null,
      reason: null,
      tokensNotBefore: null,
      timestamp: Date.now(),
    },
  })),
);
await until(async () => {
  const lag = await bus.consumerLag('aggregator-devices', ['edgefl.device.lifecycle.v1']);
  return lag.length > 0 && lag.every((p) => p.lag === 0) ? true : undefined;
});
const uniform = createSeededUniform(42);
const deltas = devices.map(() => BASE.map((t) => Float32Array.from(t.data, () => (uniform() - 0.5) * 0.01)));

/** Runs one round through the service; returns ingest rate, quorum→result time and the process's peak RSS. */
async function round(strategy: string, n: number, params: Record<string, number>) {
  const roundId = `bench-${strategy}-${randomUUID()}`;
  const ids = devices.slice(0, n);
  await api('POST', '/v1/rounds', {
    roundId,
    tenant: 'acme',
    modelId: 'm',
    baseVersion: 1,
    selectedDevices: ids.map((d) => d.id),
    quorum: n,
    deadline: Date.now() + 3_600_000,
    strategy,
    strategyParams: params,
  });
  // the round key travels in RoundOpened: read it from the bus like a device
  const pub = await until(() => roundKeys.get(roundId));
  const updates = [];
  for (let i = 0; i < n; i++) {
    const payload = encodeSealed(
      await seal(pub, encodeFloat32(deltas[i]!), { info: `edgefl/fl.update/${roundId}`, aad: ids[i]!.id }),
    );
    updates.push({
      value: {
        eventId: randomUUID(),
        tenant: 'acme',
        updateId: randomUUID(),
        roundId,
        deviceId: ids[i]!.id,
        sampleCount: 10 + (i % 7),
        payloadKind: 'SEALED' as const,
        payload: Buffer.from(payload),
        signature: Buffer.from(ids[i]!.key.sign(payload)),
        signingKeyId: ids[i]!.key.keyId,
        createdAt: Date.now(),
      },
    });
  }
  const t0 = Date.now();
  for (let i = 0; i < updates.length; i += 50)
    await typed.publish('edgefl.fl.update.v1', updates.slice(i, i + 50));
  const view = await until(async () => {
    const r = await api('GET', `/v1/rounds/${roundId}`);
    return r['quorumMetAt'] ? r : undefined;
  });
  const quorumAt = view['quorumMetAt'] as number;
  const resultAt = await until(() => results.get(roundId));
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  return {
    ingestPerSecond: n / ((quorumAt - t0) / 1000),
    quorumToResult: (resultAt - quorumAt) / 1000,
    peakRss: hwm ? Number(hwm[1]) * 1024 : Number.NaN,
  };
}

function bare<T>(work: () => T): number {
  const t = process.hrtime.bigint();
  work();
  return Number(process.hrtime.bigint() - t) / 1e9;
}
const sizes = devices.map((_, i) => 10 + (i % 7));
const fedavgBare = bare(() => {
  const acc = createFedAvgAccumulator();
  deltas.forEach((w, i) => acc.add({ weights: w, numExamples: sizes[i]! }));
  return acc.result();
});
const fed = await round('fedavg', CLIENTS, {});
const krumN = Math.min(KRUM_CLIENTS, CLIENTS);
const f = Math.floor(krumN / 10);
const krumBare = bare(() =>
  multiKrum(
    deltas.slice(0, krumN).map((w, i) => ({ weights: w, numExamples: sizes[i]! })),
    f,
    krumN - 2 * f,
  ),
);
const krum = await round('multi-krum', krumN, { f, m: krumN - 2 * f });

writeReport({
  name: 'aggregator-round',
  figures: [
    figure(`FedAvg quorum → RoundResult, ${CLIENTS} × ${D}`, 's', fed.quorumToResult, {
      name: 'libs/fl streaming FedAvg, bare',
      value: fedavgBare,
    }),
    figure(`Multi-Krum quorum → RoundResult, ${krumN} × ${D} (f=${f})`, 's', krum.quorumToResult, {
      name: 'libs/fl multiKrum, bare',
      value: krumBare,
    }),
    figure('updates ingested from the bus (FedAvg round)', 'updates/s', fed.ingestPerSecond),
    figure('aggregator peak RSS (VmHWM) after the FedAvg round', 'bytes', fed.peakRss, {
      name: 'n·d·4 (all updates in memory)',
      value: CLIENTS * D * 4,
    }),
  ],
  notes: [
    `${CLIENTS} clients × ${D} parameters; Multi-Krum on ${krumN} clients (AGG_BENCH_KRUM_CLIENTS; n²·d work)`,
    'the service figure includes HPKE open of every stored update, decoding, the SQLite read, base + delta and the publish',
    'VmHWM is the peak over the process life so far (the Multi-Krum round runs after it is read)',
    'the machine has 2 cores shared with other engineers running tests: repeat to see the spread',
  ],
});
await bus.close();
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
registry.close();
rmSync(dir, { recursive: true, force: true });
