import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RoundResult } from '@edgefl/contracts';
import { createFedAvgAccumulator, encodeFloat32 } from '@edgefl/fl';
import { SealPrivateKey } from '@edgefl/keys';
import { describeOnBuses, eventually, expectProblem, httpClient, startTestService } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';
import { BASE, TestBus, delta, fakeRegistry, roundRequest, sealedUpdate, type SimDevice } from './harness.js';

const TENANT = 'acme';

/** The value of one sample of the Prometheus text format (labels in any order), or undefined. */
function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[3]);
  }
  return undefined;
}

describeOnBuses('aggregator rounds (real app, simulated devices)', () => {
  let registry: Awaited<ReturnType<typeof fakeRegistry>>;
  let app: Awaited<ReturnType<typeof startTestService>>;
  let bus: TestBus;
  let devices: SimDevice[];

  const api = httpClient({ authorization: `Bearer ${TestBus.ADMIN_TOKEN}` });
  const post = (path: string, body?: unknown) => api(app.url, 'POST', path, body);
  const get = async (path: string) => (await api(app.url, 'GET', path)).body;
  const request = (over: Record<string, unknown> = {}) => roundRequest(TENANT, devices, 120_000, over);

  beforeAll(async () => {
    registry = await fakeRegistry();
    app = await startTestService(bootstrap, {
      AGGREGATOR_REGISTRY_URL: registry.url,
      AGGREGATOR_TICK_MS: '50',
      AGGREGATOR_DP_BUDGET_EPSILON: '5',
      AGGREGATOR_ADMIN_TOKEN: TestBus.ADMIN_TOKEN,
    });
    bus = await TestBus.open(app.bus);
    devices = await bus.register(TENANT, ['d1', 'd2', 'd3', 'd4', 'd5']);
    await bus.devicesKnown();
  }, 60_000);

  afterAll(async () => {
    await bus?.close();
    await app?.stop();
    await registry?.close();
  });

  it('refuses impossible settings with problem+json 400 and names the reason; malformed bodies 422; no token 401', async () => {
    for (const [over, code] of [
      [{ quorum: 9 }, 'quorum-above-selection'],
      [{ quorum: 0.5, selectedDevices: ['d1', 'd1'] }, 'duplicate-devices'],
      [{ deadline: Date.now() - 1000 }, 'deadline-in-past'],
      [{ strategy: 'fedsomething' }, 'unknown-strategy'],
      [{ strategy: 'krum' }, 'missing-strategy-param'],
      [{ dp: { mode: 'central', noiseMultiplier: 1 } }, 'dp-needs-clip-norm'],
      [{ privacyMode: 'secure-aggregation', maxNorm: 1 }, 'secure-aggregation-max-norm'],
    ] as const) {
      expect(expectProblem(await post('/v1/rounds', request(over)), 400)['code'], code).toBe(code);
    }
    expectProblem(await post('/v1/rounds', request({ quorum: 'three' })), 422);
    expectProblem(await api(app.url, 'POST', '/v1/rounds', request(), { authorization: '' }), 401);
    expectProblem(
      await api(app.url, 'GET', '/v1/rounds', undefined, { authorization: 'Bearer wrong-token-0123456789' }),
      401,
    );
  });

  it('runs a sealed FedAvg round: every bad update rejected with its reason, the aggregate is libs/fl FedAvg of the good ones', async () => {
    const roundId = `r-${randomUUID()}`;
    const res = await post(
      '/v1/rounds',
      request({ roundId, quorum: 3, selectedDevices: ['d1', 'd2', 'd3', 'd4'] }),
    );
    expect(res.status).toBe(201);
    const opened = await eventually('RoundOpened', () => bus.opened(roundId));
    expect(opened.selectedDevices).toEqual(['d1', 'd2', 'd3', 'd4']);
    expect(opened.secureAggregation.mode).toBe('HPKE');
    const pub = new Uint8Array(opened.secureAggregation.roundPublicKey!);
    const [d1, d2, d3, d4, d5] = devices as [SimDevice, SimDevice, SimDevice, SimDevice, SimDevice];
    const good = [delta(1), delta(2), delta(3)];
    const a = await sealedUpdate(d1, TENANT, roundId, pub, good[0]!, { sampleCount: 10 });
    const forged = await sealedUpdate(d2, TENANT, roundId, pub, delta(9));
    forged.signature = Buffer.from(d4.key.sign(forged.payload)); // signed by another device's key
    // a hostile device bypasses the SDK's encoder: a float32 payload whose last value is NaN
    const nan = encodeFloat32(delta(10));
    nan.set([0x00, 0x00, 0xc0, 0x7f], nan.byteLength - 4);
    const bad = [
      await sealedUpdate(d5, TENANT, roundId, pub, delta(8)), // not selected
      forged,
      await sealedUpdate(d4, TENANT, roundId, SealPrivateKey.generate().publicKey, delta(11)), // wrong round key
      await sealedUpdate(d4, TENANT, roundId, pub, [], { raw: nan }),
      await sealedUpdate(d4, TENANT, roundId, pub, [new Float32Array(3)]), // wrong shape
      await sealedUpdate(d4, TENANT, `nope-${roundId}`, pub, delta(12)), // unknown round
    ];
    const replay = { ...a, eventId: randomUUID() };
    await bus.publishUpdates([...bad, a, replay]);
    await bus.publishUpdates([
      await sealedUpdate(d2, TENANT, roundId, pub, good[1]!, { sampleCount: 30 }),
      await sealedUpdate(d3, TENANT, roundId, pub, good[2]!, { sampleCount: 20 }),
    ]);
    const resultEvent = await eventually('RoundResult', () => bus.of(roundId, 'RoundResult')[0]);
    const result = (resultEvent.event as { 'io.edgefl.fl.RoundResult': RoundResult })[
      'io.edgefl.fl.RoundResult'
    ];
    const closed = bus.of(roundId, 'RoundClosed');
    expect(closed).toHaveLength(1);
    expect(closed[0]!.event).toMatchObject({
      'io.edgefl.fl.RoundClosed': {
        reason: 'QUORUM',
        selectedCount: 4,
        receivedCount: 9, // the update for an unknown round is not this round's
        acceptedCount: 3,
        rejectedCount: 6,
        detail: null,
      },
    });
    // the expected aggregate: base + libs/fl's streaming FedAvg of the accepted deltas in arrival order
    const acc = createFedAvgAccumulator();
    [10, 30, 20].forEach((n, i) => acc.add({ weights: good[i]!, numExamples: n }));
    const avg = acc.result().weights;
    const expected = Buffer.concat(
      BASE.map((t, l) => Buffer.from(Float32Array.from(t.data, (b, j) => b + avg[l]![j]!).buffer)),
    );
    expect(Buffer.isBuffer(result.weights)).toBe(true);
    expect((result.weights as Buffer).equals(expected)).toBe(true);
    expect(result.participants).toEqual(['d1', 'd2', 'd3']);
    expect(result.baseVersion).toBe(1);
    expect(result.epsilonSpent).toBe(0);

    const report = await get(`/v1/rounds/${roundId}/report`);
    const reasons = Object.fromEntries(
      (report['rejections'] as Array<{ deviceId: string; reason: string }>).map((r) => [
        r.reason,
        r.deviceId,
      ]),
    );
    expect(reasons).toMatchObject({
      'unselected-device': 'd5',
      'bad-signature': 'd2',
      'wrong-key': 'd4',
      'non-finite': 'd4',
      'layer-count': 'd4',
      replayed: 'd1',
    });
    expect(report['participants']).toEqual(['d1', 'd2', 'd3']);
    expect(report['dropouts']).toEqual([]);
    expect((await get(`/v1/rounds/${roundId}`))['state']).toBe('DONE');
    const metrics = await eventually('unknown-round rejection counted', async () => {
      const text = await (await fetch(`${app.url}/metrics`)).text();
      return metricValue(text, 'edgefl_aggregator_updates_total', {
        verdict: 'rejected',
        reason: 'unknown-round',
      }) === 1
        ? text
        : undefined;
    });
    expect(
      metricValue(metrics, 'edgefl_aggregator_updates_total', { verdict: 'accepted', reason: 'none' }),
    ).toBe(3);
    expect(
      metricValue(metrics, 'edgefl_aggregator_updates_total', { verdict: 'rejected', reason: 'replayed' }),
    ).toBe(1);
    expect(metricValue(metrics, 'edgefl_aggregator_rounds_total', { outcome: 'succeeded' })).toBe(1);
    // an update after the close is refused as such
    await bus.publishUpdates([await sealedUpdate(d4, TENANT, roundId, pub, delta(13))]);
    await eventually('round-closed rejection', async () => {
      const r = await get(`/v1/rounds/${roundId}/report`);
      return (r['rejections'] as Array<{ reason: string }>).some((x) => x.reason === 'round-closed')
        ? r
        : undefined;
    });
  }, 90_000);

  it('closes at the deadline without a result when the quorum is not met, and cancels on request', async () => {
    const roundId = `r-${randomUUID()}`;
    expect(
      (await post('/v1/rounds', request({ roundId, quorum: 2, deadline: Date.now() + 1500 }))).status,
    ).toBe(201);
    const closed = await eventually('RoundClosed', () => bus.of(roundId, 'RoundClosed')[0]);
    expect(closed.event).toMatchObject({
      'io.edgefl.fl.RoundClosed': { reason: 'DEADLINE', acceptedCount: 0 },
    });
    expect((await get(`/v1/rounds/${roundId}`))['state']).toBe('FAILED');
    expect(bus.of(roundId, 'RoundResult')).toHaveLength(0);

    const other = `r-${randomUUID()}`;
    expect((await post('/v1/rounds', request({ roundId: other }))).status).toBe(201);
    expect((await post(`/v1/rounds/${other}/cancel`)).body['state']).toBe('CANCELLED');
    expect(expectProblem(await post(`/v1/rounds/${other}/cancel`), 409)['code']).toBe('round-not-open');
    await eventually('RoundClosed ABORTED', () => bus.of(other, 'RoundClosed')[0]);
    expectProblem(await api(app.url, 'GET', `/v1/rounds/${randomUUID()}`), 404);
  }, 60_000);

  it('charges the DP budget per tenant × model at opening and refuses a round over it with 409', async () => {
    const dp = { mode: 'central', clipNorm: 1, noiseMultiplier: 1.1, samplingRate: 0.5 };
    const first = await post('/v1/rounds', request({ roundId: `dp-${randomUUID()}`, dp }));
    expect(first.status).toBe(201);
    const eps = first.body['epsilon'] as number;
    expect(eps).toBeGreaterThan(0);
    let refused: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 50 && !refused; i++) {
      const r = await post('/v1/rounds', request({ roundId: `dp-${randomUUID()}`, dp }));
      if (r.status !== 201) refused = r;
    }
    expect(expectProblem(refused!, 409)['code']).toBe('dp-budget-exceeded');
    // another model of the same tenant has its own budget: refused here only because the registry lacks it (409)
    const other = await post('/v1/rounds', request({ roundId: `dp-${randomUUID()}`, modelId: 'other', dp }));
    expect(expectProblem(other, 409)['code']).toBe('unknown-base-version');
    const list = await get(`/v1/rounds?tenant=${TENANT}&state=OPEN`);
    expect((list['rounds'] as unknown[]).length).toBeGreaterThan(1);
  }, 60_000);
});
