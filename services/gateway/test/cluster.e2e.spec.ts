// Two aedes replicas sharing sessions, retained messages and subscriptions through Redis (aedes-persistence-redis +
// mqemitter-redis): a device on replica A receives what is published for it via replica B.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KAFKA_TOPICS, mqttBroadcastTopic, mqttDeviceTopic, type RoundEvent } from '@edgefl/contracts';
import { announceSkip, tcpReachable } from '@edgefl/testing';
import { DEVICE_SENDER } from '../src/tokens.js';
import type { DeviceSender } from '../src/uplink/device-sender.js';
import { TestIssuer, connectDevice, Inbox, startGateway, type TestGateway } from './harness.js';

const sender = (gw: TestGateway) => gw.gateway.app.get<symbol, DeviceSender>(DEVICE_SENDER);

const REDIS_URL = process.env['GATEWAY_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const { hostname, port } = new URL(REDIS_URL);
const redisUp = await tcpReachable(hostname, Number(port || 6379));
if (!redisUp)
  announceSkip(
    'gateway cluster (Redis) suite',
    `no Redis accepts connections at ${hostname}:${port || 6379}`,
  );

const T = `cluster-${randomUUID().slice(0, 8)}`;

function roundFor(device: string): RoundEvent {
  return {
    eventId: randomUUID(),
    tenant: T,
    roundId: `round-${randomUUID()}`,
    modelId: 'fraud',
    occurredAt: Date.now(),
    event: {
      'io.edgefl.fl.RoundOpened': {
        baseVersion: 1,
        selectedDevices: [device],
        quorum: 1,
        deadline: Date.now() + 60_000,
        training: { localEpochs: 1, batchSize: 8, learningRate: 0.1 },
        dp: { clipNorm: 1, noiseMultiplier: 0, mode: 'LOCAL', delta: 1e-5 },
        secureAggregation: { mode: 'NONE', threshold: 0, roundPublicKey: null, roundKeyId: null },
        strategy: 'fedavg',
        strategyParams: {},
      },
    },
  };
}

describe.skipIf(!redisUp)('two gateway replicas through Redis', () => {
  let issuer: TestIssuer;
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    a = await startGateway(issuer.url, { GATEWAY_REDIS_URL: REDIS_URL });
    b = await startGateway(issuer.url, { GATEWAY_REDIS_URL: REDIS_URL });
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await issuer?.stop();
  });

  it('reports Redis in readiness', async () => {
    const body = (await (await fetch(`${a.gateway.url}/health/ready`)).json()) as {
      info: Record<string, unknown>;
    };
    expect(Object.keys(body.info)).toContain('redis');
  });

  it('delivers to a device on replica A what replica B publishes for it', async () => {
    const device = await connectDevice(a.gateway.mqttUrl, 'on-a', await issuer.token('on-a', T));
    const inbox = new Inbox(device);
    const topic = mqttDeviceTopic(T, 'on-a', 'round');
    await device.subscribeAsync(topic, { qos: 1 });
    const round = roundFor('on-a');
    await b.bus.publish(KAFKA_TOPICS.flRound.name, [{ value: round }]);
    await inbox.next(topic);
    expect(inbox.decode(topic, 'io.edgefl.fl.RoundEvent')[0]!.roundId).toBe(round.roundId);
    await device.endAsync();
  });

  it('shares retained messages and QoS 1 sessions: a device moving from A to B gets what was queued for it', async () => {
    const id = `mover-${randomUUID().slice(0, 6)}`;
    const topic = mqttDeviceTopic(T, id, 'round');
    const first = await connectDevice(a.gateway.mqttUrl, id, await issuer.token(id, T), { clean: false });
    await first.subscribeAsync(topic, { qos: 1 });
    await first.endAsync();
    const round = roundFor(id);
    await b.bus.publish(KAFKA_TOPICS.flRound.name, [{ value: round }]);
    // the retained broadcast manifest is in Redis too: set via B's broker, read on A
    const retained = mqttBroadcastTopic(T, 'release');
    await sender(b).send(retained, Buffer.from([1, 2, 3]), {
      qos: 1,
      retain: true,
    });
    const again = await connectDevice(b.gateway.mqttUrl, id, await issuer.token(id, T), { clean: false });
    const inbox = new Inbox(again);
    await again.subscribeAsync(retained, { qos: 1 });
    await inbox.next(topic);
    expect(inbox.decode(topic, 'io.edgefl.fl.RoundEvent')[0]!.roundId).toBe(round.roundId);
    await inbox.next(retained);
    expect(inbox.on(retained)[0]!.retain).toBe(true);
    // leave Redis as found: clear the retained message and the session
    await sender(a).send(retained, Buffer.alloc(0), {
      qos: 1,
      retain: true,
    });
    await again.endAsync();
    await (await connectDevice(b.gateway.mqttUrl, id, await issuer.token(id, T), { clean: true })).endAsync();
  });
});
