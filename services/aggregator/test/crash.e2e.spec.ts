import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundResult } from '@edgefl/contracts';
import { createFedAvgAccumulator } from '@edgefl/fl';
import { describeOnBuses, eventually, freePort, httpClient, tempDir, testBusEnv } from '@edgefl/testing';
import { BASE, TestBus, delta, fakeRegistry, sealedUpdate, type SimDevice } from './harness.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const TENANT = 'acme';
const N = 24;
const api = httpClient({ authorization: `Bearer ${TestBus.ADMIN_TOKEN}` });

/** The aggregator as its own process (what kill -9 needs), on the given data directory. */
async function startProcess(
  dataDir: string,
  busEnv: Record<string, string>,
  registryUrl: string,
  faultKillAt?: string,
) {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env['PATH'],
      HOST: '127.0.0.1',
      PORT: String(port),
      EDGEFL_DATA_DIR: dataDir,
      ...busEnv,
      LOG_LEVEL: 'warn',
      AGGREGATOR_REGISTRY_URL: registryUrl,
      AGGREGATOR_TICK_MS: '50',
      AGGREGATOR_ADMIN_TOKEN: TestBus.ADMIN_TOKEN,
      ...(faultKillAt ? { AGGREGATOR_FAULT_KILL_AT: faultKillAt } : {}),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    `aggregator ready (${stderr.slice(-500)})`,
    async () => {
      if (child.exitCode !== null) throw new Error(`the aggregator exited: ${stderr.slice(-2000)}`);
      const res = await fetch(`${url}/health/ready`).catch(() => null);
      return res?.status === 200;
    },
    60_000,
  );
  return { url, child, exited };
}

const ready = existsSync(MAIN);
if (!ready) console.warn(`SKIPPED aggregator crash suite: ${MAIN} is not built (npm run build)`);

(ready ? describeOnBuses : describe.skip)('aggregator crash recovery (kill -9 of the real process)', () => {
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let bus: TestBus;
  let devices: SimDevice[];
  let current: Awaited<ReturnType<typeof startProcess>> | undefined;
  let busEnv: Record<string, string> = {};

  beforeAll(async () => {
    registry = await fakeRegistry();
    dir = await tempDir('edgefl-aggregator-crash-');
    const on = await testBusEnv(dir.path);
    busEnv = on.env;
    bus = await TestBus.open(on.target);
    devices = await bus.register(
      TENANT,
      Array.from({ length: N }, (_, i) => `c${i}`),
    );
  }, 60_000);

  afterAll(async () => {
    current?.child.kill('SIGKILL');
    await bus?.close();
    await registry?.close();
    await dir?.remove();
  });

  for (const point of ['intake-half', 'aggregation-half', 'result-stored'] as const) {
    it(`killed at ${point}: the restarted process publishes the same aggregate once, no update counted twice`, async () => {
      current = await startProcess(dir.path, busEnv, registry.url, point);
      await bus.devicesKnown();
      const roundId = `crash-${point}-${randomUUID()}`;
      const res = await api(current.url, 'POST', '/v1/rounds', {
        roundId,
        tenant: TENANT,
        modelId: 'm',
        baseVersion: 1,
        selectedDevices: devices.map((d) => d.id),
        quorum: N,
        deadline: Date.now() + 300_000,
      });
      expect(res.status).toBe(201);
      const opened = await eventually('RoundOpened', () => bus.opened(roundId));
      const pub = new Uint8Array(opened.secureAggregation.roundPublicKey!);
      const deltas = devices.map((_, i) => delta(100 + i));
      const sizes = devices.map((_, i) => 5 + i);
      await bus.publishUpdates(
        await Promise.all(
          devices.map((d, i) =>
            sealedUpdate(d, TENANT, roundId, pub, deltas[i]!, { sampleCount: sizes[i]! }),
          ),
        ),
      );
      expect(await current.exited).toBe('SIGKILL');
      current = await startProcess(dir.path, busEnv, registry.url);
      const resultEvent = await eventually('RoundResult', () => bus.of(roundId, 'RoundResult')[0], 90_000);
      const result = (resultEvent.event as { 'io.edgefl.fl.RoundResult': RoundResult })[
        'io.edgefl.fl.RoundResult'
      ];

      const acc = createFedAvgAccumulator();
      deltas.forEach((w, i) => acc.add({ weights: w, numExamples: sizes[i]! }));
      const avg = acc.result().weights;
      const expected = Buffer.concat(
        BASE.map((t, l) => Buffer.from(Float32Array.from(t.data, (b, j) => b + avg[l]![j]!).buffer)),
      );
      expect((result.weights as Buffer).equals(expected)).toBe(true);
      expect(result.participants).toEqual(devices.map((d) => d.id));
      const report = (
        await api<{ counts: { received: number; accepted: number; rejected: number }; state: string }>(
          current.url,
          'GET',
          `/v1/rounds/${roundId}/report`,
        )
      ).body;
      expect(report.counts).toEqual({ received: N, accepted: N, rejected: 0 });
      expect(report.state).toBe('DONE');
      // one RoundClosed and one RoundResult on the bus (a republish would carry the same event id: count ids too)
      await new Promise((r) => setTimeout(r, 500)); // settle: anything republished late would show below
      expect(bus.of(roundId, 'RoundResult')).toHaveLength(1);
      expect(bus.of(roundId, 'RoundClosed')).toHaveLength(1);
      current.child.kill('SIGTERM');
      await current.exited;
      current = undefined;
    }, 180_000);
  }
});
