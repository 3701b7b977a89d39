import { describeOnBuses } from '@edgefl/testing';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  KAFKA_TOPICS,
  mqttBroadcastTopic,
  mqttDeviceTopic,
  type InferenceReply,
  type ReleaseEvent,
  type ReleaseManifest,
  type RoundEvent,
  type SecAggMessage,
} from '@edgefl/contracts';
import { rolloutBucket } from '../src/downlink/releases.service.js';
import { TestIssuer, connectDevice, eventually, Inbox, startGateway, type TestGateway } from './harness.js';

const T = `acme-${randomUUID().slice(0, 8)}`;

function manifestEvent(
  releaseId: string,
  version: number,
  options: { percentage?: number; groups?: string[]; occurredAt?: number; floorBucket?: number } = {},
): ReleaseEvent {
  const now = Date.now();
  const manifest: ReleaseManifest = {
    releaseId,
    tenant: T,
    modelId: 'fraud',
    version,
    label: `v${version}`,
    artifactUri: `/v1/models/fraud/versions/${version}/artifact`,
    sha256: 'ab'.repeat(32),
    sizeBytes: 1000,
    signature: Buffer.alloc(64, 1),
    signingKeyId: 'k',
    deltas: [],
    rollout: {
      stage: 'full',
      percentage: options.percentage ?? 100,
      floorBucket: options.floorBucket ?? null,
    },
    targeting: { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: options.groups ?? [] },
    expiresAt: now + 3_600_000,
    createdAt: now,
    signedManifest: '{"signed":{},"signatures":[]}',
  };
  return {
    eventId: randomUUID(),
    tenant: T,
    releaseId,
    modelId: 'fraud',
    occurredAt: options.occurredAt ?? now,
    event: { 'io.edgefl.registry.ReleaseManifest': manifest },
  };
}

describeOnBuses('gateway down-bridge', () => {
  let issuer: TestIssuer;
  let gw: TestGateway;
  const connect = async (id: string, group: string | null = null) =>
    connectDevice(gw.gateway.mqttUrl, id, await issuer.token(id, T, { group }));

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    gw = await startGateway(issuer.url);
  });
  afterAll(async () => {
    await gw?.stop();
    await issuer?.stop();
  });

  it('retains a tenant-wide manifest on the broadcast topic: a device that connects late gets it at once', async () => {
    const release = `rel-${randomUUID()}`;
    await gw.bus.publish(KAFKA_TOPICS.registryRelease.name, [{ value: manifestEvent(release, 7) }]);
    const topic = mqttBroadcastTopic(T, 'release');
    await eventually('the retained manifest', async () => {
      const late = await connect(`late-${randomUUID().slice(0, 6)}`);
      const inbox = new Inbox(late);
      await late.subscribeAsync(topic, { qos: 1 });
      const got = await eventually('a message', async () => inbox.on(topic)[0], 2_000).catch(() => undefined);
      await late.endAsync();
      return got && got.retain && got.payload.length > 0
        ? inbox.decode(topic, 'io.edgefl.registry.ReleaseManifest')
        : undefined;
    }).then((manifests) => expect(manifests[0]).toMatchObject({ releaseId: release, version: 7, tenant: T }));
  });

  it('retains a group-targeted manifest on the device topics of that group only, also for devices connecting later', async () => {
    const release = `rel-${randomUUID()}`;
    const inGroup = await connect('grp-a-1', 'eu');
    const outside = await connect('grp-b-1', 'us');
    const inboxA = new Inbox(inGroup);
    const inboxB = new Inbox(outside);
    await inGroup.subscribeAsync(mqttDeviceTopic(T, 'grp-a-1', 'release'), { qos: 1 });
    await outside.subscribeAsync(mqttDeviceTopic(T, 'grp-b-1', 'release'), { qos: 1 });
    await gw.bus.publish(KAFKA_TOPICS.registryRelease.name, [
      { value: manifestEvent(release, 8, { groups: ['eu'] }) },
    ]);
    await inboxA.next(mqttDeviceTopic(T, 'grp-a-1', 'release'));
    const later = await connect('grp-a-2', 'eu');
    const inboxLater = new Inbox(later);
    await later.subscribeAsync(mqttDeviceTopic(T, 'grp-a-2', 'release'), { qos: 1 });
    await inboxLater.next(mqttDeviceTopic(T, 'grp-a-2', 'release'));
    expect(
      inboxLater.decode(mqttDeviceTopic(T, 'grp-a-2', 'release'), 'io.edgefl.registry.ReleaseManifest')[0],
    ).toMatchObject({
      releaseId: release,
    });
    // the device outside the group got nothing (a later message on its own topic proves its session was live)
    expect(inboxB.on(mqttDeviceTopic(T, 'grp-b-1', 'release'))).toHaveLength(0);
    expect(inboxB.messages).toHaveLength(0);
    for (const c of [inGroup, outside, later]) await c.endAsync();
  });

  it('offers a staged manifest to exactly the devices inside the stage (the registry’s bucket rule)', async () => {
    const release = 'rel-staged-1'; // fixed: which of the 12 devices fall inside 50% is then fixed too
    const ids = Array.from({ length: 12 }, (_, i) => `stg-${i}`);
    const inside = ids.filter((id) => rolloutBucket(release, id) < 50);
    expect(inside.length).toBeGreaterThan(0);
    expect(inside.length).toBeLessThan(ids.length);
    const clients = await Promise.all(ids.map((id) => connect(id)));
    const inboxes = clients.map((c) => new Inbox(c));
    await Promise.all(
      clients.map((c, i) => c.subscribeAsync(mqttDeviceTopic(T, ids[i]!, 'release'), { qos: 1 })),
    );
    await gw.bus.publish(KAFKA_TOPICS.registryRelease.name, [
      { value: manifestEvent(release, 9, { percentage: 50 }) },
    ]);
    for (const id of inside) await inboxes[ids.indexOf(id)]!.next(mqttDeviceTopic(T, id, 'release'));
    const got = ids.filter((id, i) => inboxes[i]!.on(mqttDeviceTopic(T, id, 'release')).length > 0);
    expect(got).toEqual(inside);
    // withdrawn when halted: an empty retained message clears the topic of the devices it was for
    await gw.bus.publish(KAFKA_TOPICS.registryRelease.name, [
      {
        value: {
          eventId: randomUUID(),
          tenant: T,
          releaseId: release,
          modelId: 'fraud',
          occurredAt: Date.now(),
          event: {
            'io.edgefl.registry.RolloutTransition': {
              releaseId: release,
              fromState: 'ROLLING_OUT',
              toState: 'HALTED',
              stage: { stage: '50pct', percentage: 50, floorBucket: null },
              reason: 'gate failed',
              rollForward: null,
            },
          },
        },
      },
    ]);
    const first = inside[0]!;
    await eventually('the withdrawal', async () =>
      inboxes[ids.indexOf(first)]!.on(mqttDeviceTopic(T, first, 'release')).find(
        (m) => m.payload.length === 0,
      ),
    );
    for (const c of clients) await c.endAsync();
  });

  it('sends a round invitation to exactly the selected devices, and its close to the same devices', async () => {
    const roundId = `round-${randomUUID()}`;
    const selected = await connect('rd-1');
    const notSelected = await connect('rd-2');
    const inboxSel = new Inbox(selected);
    const inboxNot = new Inbox(notSelected);
    await selected.subscribeAsync(mqttDeviceTopic(T, 'rd-1', 'round'), { qos: 1 });
    await notSelected.subscribeAsync(`edgefl/${T}/rd-2/#`, { qos: 1 });
    const base = { eventId: randomUUID(), tenant: T, roundId, modelId: 'fraud', occurredAt: Date.now() };
    const opened: RoundEvent = {
      ...base,
      event: {
        'io.edgefl.fl.RoundOpened': {
          baseVersion: 1,
          selectedDevices: ['rd-1', 'rd-offline'],
          quorum: 1,
          deadline: Date.now() + 60_000,
          training: { localEpochs: 1, batchSize: 32, learningRate: 0.01 },
          dp: { clipNorm: 1, noiseMultiplier: 0, mode: 'LOCAL', delta: 1e-5 },
          secureAggregation: { mode: 'NONE', threshold: 0, roundPublicKey: null, roundKeyId: null },
          strategy: 'fedavg',
          strategyParams: {},
        },
      },
    };
    const closed: RoundEvent = {
      ...base,
      eventId: randomUUID(),
      event: {
        'io.edgefl.fl.RoundClosed': {
          reason: 'ABORTED',
          selectedCount: 2,
          receivedCount: 0,
          acceptedCount: 0,
          rejectedCount: 0,
          detail: null,
        },
      },
    };
    await gw.bus.publish(KAFKA_TOPICS.flRound.name, [{ value: opened }, { value: closed }]);
    await inboxSel.next(mqttDeviceTopic(T, 'rd-1', 'round'), 2);
    const events = inboxSel.decode(mqttDeviceTopic(T, 'rd-1', 'round'), 'io.edgefl.fl.RoundEvent');
    expect(events.map((e) => Object.keys(e.event)[0])).toEqual([
      'io.edgefl.fl.RoundOpened',
      'io.edgefl.fl.RoundClosed',
    ]);
    // the offline selected device gets it when it connects (QoS 1 session) — here it never did; rd-2 got nothing
    const secagg: SecAggMessage = {
      eventId: randomUUID(),
      tenant: T,
      roundId,
      senderDeviceId: null,
      phase: 'SHARE_KEYS',
      participants: ['rd-2'],
      cipherPublicKey: null,
      maskPublicKey: null,
      keySignature: null,
      encryptedShares: { 'rd-2': Buffer.from([1, 2, 3]) },
      maskedInput: null,
      selfMaskShares: {},
      maskKeyShares: {},
      config: null,
      bucket: 0,
      advertisedKeys: {},
      selfMaskCommitment: null,
      consistencySignature: null,
      survivorSignatures: {},
      dropped: [],
      recipientDeviceId: null,
      createdAt: Date.now(),
    };
    await gw.bus.publish(KAFKA_TOPICS.flSecAgg.name, [{ value: secagg }]);
    await inboxNot.next(mqttDeviceTopic(T, 'rd-2', 'secagg'));
    expect(inboxNot.messages.map((m) => m.topic)).toEqual([mqttDeviceTopic(T, 'rd-2', 'secagg')]);
    expect(
      inboxNot.decode(mqttDeviceTopic(T, 'rd-2', 'secagg'), 'io.edgefl.fl.SecAggMessage')[0]!.phase,
    ).toBe('SHARE_KEYS');
    // a request with a recipient goes to that device only, not to the participants it names (its neighbours)
    await selected.subscribeAsync(mqttDeviceTopic(T, 'rd-1', 'secagg'), { qos: 1 });
    const addressed: SecAggMessage = {
      ...secagg,
      eventId: randomUUID(),
      phase: 'MASKED_INPUT',
      participants: ['rd-1'],
      recipientDeviceId: 'rd-2',
    };
    const marker: SecAggMessage = { ...secagg, eventId: randomUUID(), participants: ['rd-1'] };
    await gw.bus.publish(KAFKA_TOPICS.flSecAgg.name, [{ value: addressed }, { value: marker }]);
    await inboxNot.next(mqttDeviceTopic(T, 'rd-2', 'secagg'), 2);
    await inboxSel.next(mqttDeviceTopic(T, 'rd-1', 'secagg'));
    expect(
      inboxNot.decode(mqttDeviceTopic(T, 'rd-2', 'secagg'), 'io.edgefl.fl.SecAggMessage').map((m) => m.phase),
    ).toEqual(['SHARE_KEYS', 'MASKED_INPUT']);
    // rd-1 got the marker (published after the addressed request, same partition) and not the request
    expect(
      inboxSel
        .decode(mqttDeviceTopic(T, 'rd-1', 'secagg'), 'io.edgefl.fl.SecAggMessage')
        .map((m) => m.eventId),
    ).toEqual([marker.eventId]);
    await selected.endAsync();
    await notSelected.endAsync();
  });

  it('routes an inference reply to the device that asked, by correlation id', async () => {
    const device = await connect('inf-1');
    const inbox = new Inbox(device);
    const topic = mqttDeviceTopic(T, 'inf-1', 'infer', { reply: true });
    await device.subscribeAsync(topic, { qos: 1 });
    const correlationId = randomUUID();
    const reply: InferenceReply = {
      eventId: randomUUID(),
      tenant: T,
      deviceId: 'inf-1',
      correlationId,
      modelId: 'fraud',
      modelVersion: 3,
      prediction: [0.9],
      label: 'fraud',
      confidence: 0.9,
      errorCode: null,
      errorMessage: null,
      timestamp: Date.now(),
    };
    const direct: InferenceReply = {
      ...reply,
      eventId: randomUUID(),
      deviceId: null,
      correlationId: randomUUID(),
    };
    await gw.bus.publish(KAFKA_TOPICS.inferenceReply.name, [{ value: direct }, { value: reply }]);
    await inbox.next(topic);
    expect(inbox.decode(topic, 'io.edgefl.inference.InferenceReply').map((r) => r.correlationId)).toEqual([
      correlationId,
    ]);
    await device.endAsync();
  });
});
