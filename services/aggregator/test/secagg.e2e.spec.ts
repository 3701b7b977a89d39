import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { MessageAck, RoundResult, SecAggMessage } from '@edgefl/contracts';
import { SecAggParticipant, type SecAggChannel } from '@edgefl/device-sdk';
import { createRule } from '@edgefl/fl';
import {
  describeOnBuses,
  eventually,
  expectProblem,
  httpClient,
  startTestService,
  tempDir,
} from '@edgefl/testing';
import { bootstrap } from '../src/main.js';
import { BASE, TestBus, delta, fakeRegistry, roundRequest, type SimDevice } from './harness.js';

const TENANT = 'acme';
const api = httpClient({ authorization: `Bearer ${TestBus.ADMIN_TOKEN}` });

/**
 * Plays the gateway for simulated devices on the bus: the aggregator's requests for a device (recipientDeviceId)
 * go to its listener, its replies go onto `edgefl.fl.secagg.v1` and are acknowledged. `offline` devices get
 * nothing from then on (they dropped out); `tap` sees every device message before it is published.
 */
class BusDevices {
  readonly listeners = new Map<string, (m: SecAggMessage) => void>();
  readonly offline = new Set<string>();
  readonly sent: SecAggMessage[] = [];
  readonly requests: SecAggMessage[] = [];
  tap: (m: SecAggMessage) => SecAggMessage[] = (m) => [m];

  constructor(private readonly bus: TestBus) {}

  async listen(): Promise<void> {
    await this.bus.typed.subscribe({
      group: `devices-${randomUUID()}`,
      topics: ['edgefl.fl.secagg.v1'],
      fromBeginning: true,
      handler: (r) => {
        const m = r.value;
        if (m.senderDeviceId !== null || m.recipientDeviceId === null) return;
        this.requests.push(m);
        if (this.offline.has(m.recipientDeviceId)) return;
        this.listeners.get(`${m.roundId}|${m.recipientDeviceId}`)?.(m);
      },
    });
  }

  channel(device: SimDevice): SecAggChannel {
    return {
      send: async (message): Promise<MessageAck> => {
        if (!this.offline.has(device.id)) {
          const out = this.tap(message);
          this.sent.push(...out);
          await this.bus.typed.publish(
            'edgefl.fl.secagg.v1',
            out.map((value) => ({ value })),
          );
        }
        return {
          eventId: randomUUID(),
          tenant: TENANT,
          correlationId: message.eventId,
          accepted: true,
          errorCode: null,
          errorMessage: null,
          timestamp: Date.now(),
        };
      },
      onMessage: (roundId, listener) => {
        const key = `${roundId}|${device.id}`;
        this.listeners.set(key, listener);
        return () => this.listeners.delete(key);
      },
      sign: (bytes) => device.key.sign(bytes),
    };
  }
}

/** Runs the device side of a round for `devices`, each with its seeded update; resolves when all settled. */
function participate(
  net: BusDevices,
  devices: SimDevice[],
  roundId: string,
  updates: Map<string, Float32Array[]>,
  signal: AbortSignal,
) {
  const keys = new Map(devices.map((d) => [d.id, d.key.publicKey]));
  return Promise.allSettled(
    devices.map((d) =>
      new SecAggParticipant({ peerKeys: (id) => keys.get(id) ?? null }).participate(
        { tenant: TENANT, roundId, deviceId: d.id, opened: null as never },
        async () => updates.get(d.id)!,
        net.channel(d),
        signal,
      ),
    ),
  );
}

const maxAbsDiff = (a: readonly Float32Array[], b: readonly ArrayLike<number>[]) =>
  Math.max(...a.flatMap((l, i) => Array.from(l, (v, j) => Math.abs(v - b[i]![j]!))));

function resultWeights(bus: TestBus, roundId: string): Float32Array[] {
  const result = bus.of(roundId, 'RoundResult')[0]!.event as { 'io.edgefl.fl.RoundResult': RoundResult };
  const bytes = result['io.edgefl.fl.RoundResult'].weights as Buffer;
  const all = new Float32Array(Uint8Array.from(bytes).buffer);
  let at = 0;
  return BASE.map((t) => {
    const out = all.slice(at, at + t.data.length);
    at += t.data.length;
    return out;
  });
}

describeOnBuses('secure-aggregation rounds (real app, devices running the SDK participant)', () => {
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let app: Awaited<ReturnType<typeof startTestService>>;
  let bus: TestBus;
  let net: BusDevices;
  let devices: SimDevice[];
  const env = () => ({
    AGGREGATOR_REGISTRY_URL: registry.url,
    AGGREGATOR_TICK_MS: '50',
    AGGREGATOR_ADMIN_TOKEN: TestBus.ADMIN_TOKEN,
    EDGEFL_DATA_DIR: dir.path,
  });
  const post = (path: string, body?: unknown) => api(app.url, 'POST', path, body);
  const get = async (path: string) => (await api(app.url, 'GET', path)).body as Record<string, unknown>;
  const request = (over: Record<string, unknown> = {}) =>
    roundRequest(TENANT, devices, 300_000, { privacyMode: 'secure-aggregation', ...over });

  beforeAll(async () => {
    registry = await fakeRegistry();
    dir = await tempDir('edgefl-agg-secagg-');
    app = await startTestService(bootstrap, env());
    bus = await TestBus.open(app.bus);
    net = new BusDevices(bus);
    await net.listen();
    devices = await bus.register(
      TENANT,
      Array.from({ length: 8 }, (_, i) => `s${i}`),
    );
    await bus.devicesKnown();
  }, 60_000);

  beforeEach(() => {
    net.tap = (m) => [m];
    net.offline.clear();
  });

  afterAll(async () => {
    await bus?.close();
    await app?.stop();
    await registry?.close();
    await dir?.remove();
  });

  it('refuses secure settings the protocol cannot run with (400 and the reason)', async () => {
    for (const [over, code] of [
      [{ secureAggregation: { threshold: 50 } }, 'bad-secure-aggregation'],
      [{ maxNorm: 1 }, 'secure-aggregation-max-norm'],
      [{ selectedDevices: ['s0'], quorum: 1 }, 'secure-aggregation-too-few'],
      [{ privacyMode: 'sealed', secureAggregation: {} }, 'secure-aggregation-settings-without-mode'],
    ] as const)
      expect(expectProblem(await post('/v1/rounds', request(over)), 400)['code'], code).toBe(code);
  });

  it('runs the phases with dropouts; the result is base + the mean of the survivors within fixed-point precision; bad messages are refused and counted', async () => {
    const roundId = `sa-${randomUUID()}`;
    const updates = new Map(devices.map((d, i) => [d.id, delta(100 + i, 0.2)]));
    // s6 drops after advertising its keys, s7 after sending its masked input (its input stays in the sum)
    let forged = false;
    net.tap = (m) => {
      if (m.roundId !== roundId) return [m];
      if (m.senderDeviceId === 's6' && m.phase === 'ADVERTISE_KEYS') net.offline.add('s6');
      if (m.senderDeviceId === 's7' && m.phase === 'MASKED_INPUT') net.offline.add('s7');
      if (m.senderDeviceId === 's0' && m.phase === 'SHARE_KEYS' && !forged) {
        forged = true;
        return [
          m, // and then: the same message again (replay), a stranger, an oversized and an out-of-phase one
          { ...m, eventId: randomUUID() },
          { ...m, eventId: randomUUID(), senderDeviceId: 'mallory' },
          { ...m, eventId: randomUUID(), maskedInput: Buffer.alloc(1 << 20) },
          { ...m, eventId: randomUUID(), phase: 'UNMASKING' },
          { ...m, eventId: randomUUID(), roundId: 'no-such-round' },
        ];
      }
      return [m];
    };
    const stop = new AbortController();
    const done = participate(net, devices, roundId, updates, stop.signal);
    const started = await post(
      '/v1/rounds',
      request({ roundId, quorum: 5, secureAggregation: { threshold: 4, phaseTimeoutMs: 1500, bound: 1 } }),
    );
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const opened = await eventually('RoundOpened', async () => bus.opened(roundId));
    expect(opened.secureAggregation).toMatchObject({ mode: 'MASKED', threshold: 4, roundPublicKey: null });
    await eventually('the result', async () => bus.of(roundId, 'RoundResult')[0], 90_000);
    stop.abort();
    const outcomes = await done;
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(6); // s6 and s7 dropped out

    const report = await get(`/v1/rounds/${roundId}/report`);
    const survivors = devices.map((d) => d.id).filter((id) => id !== 's6');
    expect(report['participants']).toEqual(survivors);
    const sa = report['secureAggregation'] as {
      buckets: Array<{ dropouts: Record<string, string[]>; survivors: string[] }>;
      refusals: Record<string, number>;
    };
    expect(sa.buckets[0]!.dropouts['SHARE_KEYS']).toEqual(['s6']);
    expect(sa.buckets[0]!.dropouts['CONSISTENCY_CHECK']).toEqual(['s7']);
    expect(sa.refusals).toMatchObject({
      replay: 1,
      'unselected-device': 1,
      oversized: 1,
      'out-of-phase': 1,
    });
    const metrics = await (await fetch(`${app.url}/metrics`)).text();
    expect(metrics).toMatch(
      /edgefl_aggregator_secagg_messages_total\{phase="SHARE_KEYS",verdict="refused",reason="unknown-round"[^}]*\} 1/,
    );
    expect(metrics).toMatch(/edgefl_aggregator_secagg_dropouts_total\{phase="SHARE_KEYS"[^}]*\} 1/);

    // the global model is base + the plain mean of the survivors' updates, within n·2^-p of the exact value
    const mean = BASE.map((t, l) =>
      Float64Array.from(
        t.data,
        (b, j) => b + survivors.reduce((a, id) => a + updates.get(id)![l]![j]!, 0) / survivors.length,
      ),
    );
    const got = resultWeights(bus, roundId);
    expect(maxAbsDiff(got, mean)).toBeLessThan(1e-4);
    const closed = bus.of(roundId, 'RoundClosed')[0]!.event as unknown as Record<
      string,
      Record<string, unknown>
    >;
    expect(closed['io.edgefl.fl.RoundClosed']).toMatchObject({
      reason: 'QUORUM',
      acceptedCount: 7,
      selectedCount: 8,
    });
  }, 120_000);

  it('bucketed robust mode: median over the secure bucket means, no individual update seen', async () => {
    const roundId = `sa-bucket-${randomUUID()}`;
    const updates = new Map(devices.map((d, i) => [d.id, delta(200 + i, 0.2)]));
    const stop = new AbortController();
    const done = participate(net, devices, roundId, updates, stop.signal);
    const started = await post(
      '/v1/rounds',
      request({
        roundId,
        quorum: 8,
        strategy: 'median',
        secureAggregation: { threshold: 2, phaseTimeoutMs: 5000, bucketSize: 4 },
      }),
    );
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    await eventually('the result', async () => bus.of(roundId, 'RoundResult')[0], 90_000);
    stop.abort();
    await done;
    const report = await get(`/v1/rounds/${roundId}/report`);
    const buckets = (
      report['secureAggregation'] as { buckets: Array<{ clients: string[]; survivors: string[] }> }
    ).buckets;
    expect(buckets).toHaveLength(2);
    expect(buckets.flatMap((b) => b.clients).sort()).toEqual(devices.map((d) => d.id));
    // the oracle: libs/fl's median over the plain means of the same buckets
    const means = buckets.map((b) => ({
      weights: BASE.map((_, l) =>
        Float32Array.from(
          BASE[l]!.data,
          (_, j) => b.clients.reduce((a, id) => a + updates.get(id)![l]![j]!, 0) / b.clients.length,
        ),
      ),
      numExamples: b.clients.length,
    }));
    const oracle = createRule('median').aggregate(means).weights;
    const expected = BASE.map((t, l) => Float64Array.from(t.data, (b, j) => b + oracle[l]![j]!));
    expect(maxAbsDiff(resultWeights(bus, roundId), expected)).toBeLessThan(1e-4);
  }, 120_000);

  it('a restart of the aggregator mid-protocol aborts the round cleanly: FAILED with the reason, one RoundClosed (ABORTED), no result', async () => {
    const roundId = `sa-restart-${randomUUID()}`;
    const updates = new Map(devices.map((d, i) => [d.id, delta(300 + i, 0.2)]));
    // the devices stop answering at MASKED_INPUT, so the round sits in that phase until the restart
    net.tap = (m) => (m.roundId === roundId && m.phase === 'MASKED_INPUT' ? [] : [m]);
    const stop = new AbortController();
    const done = participate(net, devices, roundId, updates, stop.signal);
    const started = await post(
      '/v1/rounds',
      request({ roundId, quorum: 5, secureAggregation: { threshold: 4, phaseTimeoutMs: 600_000 } }),
    );
    expect(started.status).toBe(201);
    await eventually('the MASKED_INPUT requests', async () =>
      net.requests.some((m) => m.roundId === roundId && m.phase === 'MASKED_INPUT') ? true : undefined,
    );
    await app.stop();
    app = await startTestService(bootstrap, env());
    await eventually('the round failed', async () =>
      (await get(`/v1/rounds/${roundId}`))['state'] === 'FAILED' ? true : undefined,
    );
    const round = await get(`/v1/rounds/${roundId}`);
    expect(round['closeReason']).toBe('ABORTED');
    expect(String(round['closeDetail'])).toMatch(/restarted during MASKED_INPUT/);
    await eventually('RoundClosed', async () => bus.of(roundId, 'RoundClosed')[0]);
    expect(bus.of(roundId, 'RoundClosed')).toHaveLength(1);
    expect(bus.of(roundId, 'RoundResult')).toHaveLength(0);
    stop.abort();
    await done;
  }, 120_000);
});
