import type { FlUpdate, MessageAck, RoundOpened } from '@edgefl/contracts/edge';
import { createNormal, createSeededUniform, decodeUpdate } from '@edgefl/fl';
import { Ed25519SigningKey, verifyEd25519 } from '@edgefl/keys';
import { FRAUD_MLP, initWeights } from '@edgefl/model';
import { describe, expect, it } from 'vitest';
import { targetsFromLabels } from '../training/trainer.js';
import type { DeviceConditions } from './eligibility.js';
import { FederatedClient, proximalMuOf, type FederatedOptions } from './federated-client.js';

const key = Ed25519SigningKey.generate();
const rows = 256;
const x = new Float32Array(rows * 30).map((_, i) => Math.sin(i * 0.37));
const labels = Array.from({ length: rows }, (_, r) => (x[r * 30]! > 0 ? 1 : 0));
const data = { features: 30, rows, x, y: targetsFromLabels(FRAUD_MLP, labels) };
const ready: DeviceConditions = {
  batteryPercent: 90,
  charging: false,
  networkType: 'WIFI',
  idle: true,
  hardwareClass: 'pos',
  freeRamBytes: 1 << 30,
  modelVersion: 1,
};

function round(overrides: Partial<RoundOpened> = {}): RoundOpened {
  return {
    baseVersion: 1,
    selectedDevices: ['d1'],
    quorum: 1,
    deadline: Date.now() + 30_000,
    training: { localEpochs: 1, batchSize: 32, learningRate: 0.1 },
    dp: { clipNorm: 1, noiseMultiplier: 0, mode: 'CENTRAL', delta: 1e-5 },
    secureAggregation: { mode: 'NONE', threshold: 0, roundPublicKey: null, roundKeyId: null },
    strategy: 'fedavg',
    strategyParams: {},
    ...overrides,
  };
}

function setup(
  send: (u: FlUpdate, signal: AbortSignal) => Promise<MessageAck>,
  options: FederatedOptions = {},
  conditions = ready,
) {
  return new FederatedClient(
    {
      tenant: 'acme',
      deviceId: 'd1',
      key,
      currentModel: () => ({ spec: FRAUD_MLP, weights: initWeights(FRAUD_MLP, 1, 0.1), version: 1 }),
      data: () => data,
      conditions: () => conditions,
      sendUpdate: (u, _deadline, signal) => send(u, signal),
    },
    options,
  );
}
const ack = (u: FlUpdate, accepted = true): MessageAck => ({
  eventId: 'e',
  tenant: 'acme',
  correlationId: u.updateId,
  accepted,
  errorCode: accepted ? null : 'NOT_SELECTED',
  errorMessage: accepted ? null : 'device was not selected',
  timestamp: Date.now(),
});

describe('federated client', () => {
  it('trains, clips to the round clip norm, signs the payload and reports the acknowledged update', async () => {
    const sent: FlUpdate[] = [];
    const outcome = await setup(async (u) => (sent.push(u), ack(u)), {
      compression: 'float32',
    }).onRoundOpened('r1', round());
    expect(outcome).toMatchObject({ status: 'accepted', roundId: 'r1', sampleCount: rows });
    const u = sent[0]!;
    expect(u).toMatchObject({ roundId: 'r1', deviceId: 'd1', payloadKind: 'PLAIN', signingKeyId: key.keyId });
    expect(verifyEd25519(key.publicKey, u.payload, u.signature)).toBe(true);
    const w = decodeUpdate(u.payload).weights;
    const norm = Math.sqrt(w.reduce((n, l) => n + l.reduce((a, v) => a + v * v, 0), 0));
    expect(norm).toBeLessThanOrEqual(1 + 1e-5);
  });

  it('adds local DP noise when the round asks for it (the update differs from the clipped one by about σ·C per coordinate)', async () => {
    const sent: FlUpdate[] = [];
    const normal = createNormal(createSeededUniform(3));
    const r = round({ dp: { clipNorm: 0.5, noiseMultiplier: 1, mode: 'LOCAL', delta: 1e-5 } });
    await setup(async (u) => (sent.push(u), ack(u)), { compression: 'float32', normal }).onRoundOpened(
      'r2',
      r,
    );
    const w = decodeUpdate(sent[0]!.payload).weights.flatMap((l) => [...l]);
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.4);
    expect(std).toBeLessThan(0.6);
  });

  it('declines invitations per its eligibility policy, naming every reason', async () => {
    const client = setup(
      async (u) => ack(u),
      { policy: { minBatteryPercent: 50, networkTypes: ['WIFI'] } },
      { ...ready, batteryPercent: 10, networkType: 'CELLULAR_4G' },
    );
    expect(await client.onRoundOpened('r3', round({ selectedDevices: ['other'], baseVersion: 2 }))).toEqual({
      status: 'declined',
      roundId: 'r3',
      reasons: ['not-selected', 'model-version', 'battery', 'network'],
    });
  });

  it('reports a refusal by the gateway, a missed deadline and a cancellation', async () => {
    expect(await setup(async (u) => ack(u, false)).onRoundOpened('r4', round())).toMatchObject({
      status: 'rejected',
      errorCode: 'NOT_SELECTED',
    });
    const hang = (_u: FlUpdate, signal: AbortSignal) =>
      new Promise<MessageAck>((_, reject) =>
        signal.addEventListener('abort', () => reject(new Error('aborted'))),
      );
    expect(await setup(hang).onRoundOpened('r5', round({ deadline: Date.now() + 400 }))).toMatchObject({
      status: 'failed',
      reason: 'deadline',
    });
    const client = setup(hang);
    const running = client.onRoundOpened('r6', round());
    await new Promise((r) => setTimeout(r, 50));
    expect(client.cancel('r6')).toBe(true);
    expect(await running).toMatchObject({ status: 'failed', reason: 'cancelled' });
  });

  it('refuses MASKED rounds without a secure-aggregation client, and takes FedProx μ from the round', async () => {
    expect(
      await setup(async (u) => ack(u)).onRoundOpened(
        'r7',
        round({
          secureAggregation: { mode: 'MASKED', threshold: 2, roundPublicKey: null, roundKeyId: null },
        }),
      ),
    ).toMatchObject({ status: 'failed', reason: 'unsupported' });
    expect(proximalMuOf(round({ strategyParams: { mu: 0.1 } }))).toBe(0.1);
    expect(proximalMuOf(round())).toBe(0);
  });

  it('sends what the update transform returns, still clipped to the round clip norm, and tells it the round', async () => {
    const sent: FlUpdate[] = [];
    const seen: Array<{ roundId: string; rows: number; layers: number; trainingMs: number }> = [];
    let honest: Float32Array[] = [];
    const outcome = await setup(async (u) => (sent.push(u), ack(u)), {
      compression: 'float32',
      updateTransform: (update, ctx) => {
        honest = update.map((l) => Float32Array.from(l));
        seen.push({
          roundId: ctx.roundId,
          rows: ctx.data.rows,
          layers: ctx.base.length,
          trainingMs: ctx.trainingMs,
        });
        return update.map((l) => l.map((v) => -v));
      },
    }).onRoundOpened(
      't1',
      round({ dp: { clipNorm: 1e6, noiseMultiplier: 0, mode: 'CENTRAL', delta: 1e-5 } }),
    );
    expect(outcome).toMatchObject({ status: 'accepted' });
    expect(seen).toEqual([
      { roundId: 't1', rows, layers: (FRAUD_MLP.hidden.length + 1) * 2, trainingMs: expect.any(Number) },
    ]);
    const w = decodeUpdate(sent[0]!.payload).weights;
    expect(w.map((l) => [...l])).toEqual(honest.map((l) => [...l].map((v) => -v)));
    // a boosted update is still clipped to the round's clip norm
    const boosted: FlUpdate[] = [];
    await setup(async (u) => (boosted.push(u), ack(u)), {
      compression: 'float32',
      updateTransform: (update) => update.map((l) => l.map((v) => v * 1e4)),
    }).onRoundOpened('t2', round());
    const b = decodeUpdate(boosted[0]!.payload).weights;
    expect(Math.sqrt(b.reduce((n, l) => n + l.reduce((a, v) => a + v * v, 0), 0))).toBeCloseTo(1, 4);
  });

  it('fails the round, sending nothing, when the update transform returns the wrong shape or a non-finite value', async () => {
    const sent: FlUpdate[] = [];
    const send = async (u: FlUpdate) => (sent.push(u), ack(u));
    const short = await setup(send, { updateTransform: (u) => u.slice(1) }).onRoundOpened('t3', round());
    expect(short).toMatchObject({
      status: 'failed',
      reason: 'error',
      message: expect.stringMatching(/layers/),
    });
    const nan = await setup(send, {
      updateTransform: (u) => u.map((l, i) => (i === 0 ? l.map(() => NaN) : l)),
    }).onRoundOpened('t4', round());
    expect(nan).toMatchObject({
      status: 'failed',
      reason: 'error',
      message: expect.stringMatching(/non-finite/),
    });
    expect(sent).toHaveLength(0);
  });

  it('an update transform that waits stops at the deadline', async () => {
    const outcome = await setup(async (u) => ack(u), {
      sendMarginMs: 1,
      updateTransform: (u, ctx) =>
        new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve(u))),
    }).onRoundOpened('t5', round({ deadline: Date.now() + 300 }));
    expect(outcome).toMatchObject({ status: 'failed', reason: 'deadline' });
  });
});
