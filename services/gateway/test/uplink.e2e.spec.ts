import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KAFKA_TOPICS,
  TopicCodec,
  EmbeddedSchemaRegistry,
  mqttDeviceTopic,
  type DeadLetter,
  type DeviceLifecycle,
} from '@edgefl/contracts';
import {
  TestIssuer,
  busCount,
  connackCode,
  connectDevice,
  encodeUp,
  eventually,
  Inbox,
  metric,
  readBus,
  so,
  startGateway,
  type TestGateway,
} from './harness.js';

const T = `acme-${randomUUID().slice(0, 8)}`;

describe('gateway up-bridge, authentication and presence (embedded broker)', () => {
  let issuer: TestIssuer;
  let gw: TestGateway;
  let mqttUrl: string;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    gw = await startGateway(issuer.url, { GATEWAY_SESSION_CHECK_MS: '200' });
    mqttUrl = gw.gateway.mqttUrl;
  });
  afterAll(async () => {
    await gw?.stop();
    await issuer?.stop();
  });

  it('prints a mqtt:// URL on a free port', () => {
    expect(mqttUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
    expect(mqttUrl).not.toMatch(/:1883$/);
  });

  it('acknowledges a QoS 1 message only once its record is on the bus, re-encoded with the headers', async () => {
    const device = await connectDevice(mqttUrl, 'pos-1', await issuer.token('pos-1', T));
    const before = await busCount(gw.bus, KAFKA_TOPICS.deviceTelemetry.name);
    const payload = encodeUp('io.edgefl.device.DeviceTelemetry', T, 'pos-1');
    await device.publishAsync(mqttDeviceTopic(T, 'pos-1', 'telemetry'), payload, { qos: 1 });
    // the PUBACK has arrived: the record must already be stored (no waiting)
    expect(await busCount(gw.bus, KAFKA_TOPICS.deviceTelemetry.name)).toBe(before + 1);
    const sent = so.decode(payload, 'io.edgefl.device.DeviceTelemetry');
    const reader = await readBus(gw.bus, [KAFKA_TOPICS.deviceTelemetry.name]);
    const record = await eventually('the telemetry record', async () =>
      reader.records.find((r) => r.eventId === sent.eventId),
    );
    await reader.close();
    expect(record.key).toBe('pos-1');
    expect(record.headers).toMatchObject({ tenant: T, device: 'pos-1', 'event-id': sent.eventId });
    expect(record.headers['trace-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(record.value[0]).toBe(0); // Confluent wire format: magic 0, schema id, Avro
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${gw.dataDir}/bus.sqlite`));
    const onBus = await codec.decode(KAFKA_TOPICS.deviceTelemetry.name, record.value);
    expect(onBus).toEqual(sent);
    // the heartbeat's group and feature summaries survive the re-encoding
    expect(sent.group).toBe('eu-west');
    expect(onBus.featureSummaries?.[0]).toMatchObject({
      name: 'amount',
      bins: [4, 30, 6],
      binEdges: [-3, -1, 1, 3],
    });
    await device.endAsync();
  });

  it('answers an FL update with an accepted MessageAck on its reply topic', async () => {
    const device = await connectDevice(mqttUrl, 'pos-2', await issuer.token('pos-2', T));
    const inbox = new Inbox(device);
    const reply = mqttDeviceTopic(T, 'pos-2', 'fl-update', { reply: true });
    await device.subscribeAsync(reply, { qos: 1 });
    const payload = encodeUp('io.edgefl.fl.FlUpdate', T, 'pos-2');
    const update = so.decode(payload, 'io.edgefl.fl.FlUpdate');
    await device.publishAsync(mqttDeviceTopic(T, 'pos-2', 'fl-update'), payload, { qos: 1 });
    await inbox.next(reply);
    expect(inbox.decode(reply, 'io.edgefl.device.MessageAck')[0]).toMatchObject({
      tenant: T,
      correlationId: update.updateId,
      accepted: true,
      errorCode: null,
    });
    await device.endAsync();
  });

  it('dead-letters garbage and a payload speaking for another device, with the original bytes, and tells the device', async () => {
    const device = await connectDevice(mqttUrl, 'pos-3', await issuer.token('pos-3', T));
    const inbox = new Inbox(device);
    const errors = mqttDeviceTopic(T, 'pos-3', 'error');
    const reply = mqttDeviceTopic(T, 'pos-3', 'fl-update', { reply: true });
    await device.subscribeAsync([errors, reply], { qos: 1 });
    const garbage = Buffer.from('not avro at all');
    const forged = encodeUp('io.edgefl.device.DeviceTelemetry', T, 'pos-99');
    const truncated = encodeUp('io.edgefl.fl.FlUpdate', T, 'pos-3').subarray(0, 20);
    const unknownFingerprint = Buffer.concat([
      Buffer.from([0xc3, 0x01]),
      Buffer.alloc(8, 0xee),
      Buffer.from([1, 2]),
    ]);
    const telemetryBefore = await busCount(gw.bus, KAFKA_TOPICS.deviceTelemetry.name);
    await device.publishAsync(mqttDeviceTopic(T, 'pos-3', 'telemetry'), garbage, { qos: 1 });
    await device.publishAsync(mqttDeviceTopic(T, 'pos-3', 'telemetry'), forged, { qos: 1 });
    await device.publishAsync(mqttDeviceTopic(T, 'pos-3', 'fl-update'), truncated, { qos: 1 });
    await device.publishAsync(mqttDeviceTopic(T, 'pos-3', 'ota-status'), unknownFingerprint, { qos: 1 });
    expect(await busCount(gw.bus, KAFKA_TOPICS.deviceTelemetry.name)).toBe(telemetryBefore);

    const reader = await readBus(gw.bus, [KAFKA_TOPICS.deadLetter.name]);
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${gw.dataDir}/bus.sqlite`));
    const letters = await eventually('four dead letters', async () => {
      const mine: DeadLetter[] = [];
      for (const r of reader.records) {
        const letter = await codec.decode(KAFKA_TOPICS.deadLetter.name, r.value);
        if (letter.headers['device'] === 'pos-3') mine.push(letter);
      }
      return mine.length >= 4 ? mine : undefined;
    });
    await reader.close();
    const byCode = new Map(letters.map((l) => [l.errorCode, l]));
    expect(Buffer.from(byCode.get('bad_magic')!.value)).toEqual(garbage);
    expect(Buffer.from(byCode.get('identity_mismatch')!.value)).toEqual(forged);
    expect(Buffer.from(byCode.get('truncated')!.value)).toEqual(truncated);
    expect(Buffer.from(byCode.get('unknown_fingerprint')!.value)).toEqual(unknownFingerprint);
    expect(byCode.get('identity_mismatch')).toMatchObject({
      tenant: T,
      originalTopic: mqttDeviceTopic(T, 'pos-3', 'telemetry'),
    });

    await inbox.next(errors, 3);
    expect(
      inbox
        .decode(errors, 'io.edgefl.device.MessageAck')
        .map((a) => [a.accepted, a.errorCode])
        .sort(),
    ).toEqual([
      [false, 'bad_magic'],
      [false, 'identity_mismatch'],
      [false, 'unknown_fingerprint'],
    ]);
    await inbox.next(reply);
    expect(inbox.decode(reply, 'io.edgefl.device.MessageAck')[0]).toMatchObject({
      accepted: false,
      errorCode: 'truncated',
    });
    expect(
      await metric(gw.gateway.url, 'edgefl_gateway_dead_letters_total', { reason: 'identity_mismatch' }),
    ).toBe(1);
    await device.endAsync();
  });

  it('refuses oversized payloads with a reason, without dead-lettering them', async () => {
    const small = await startGateway(issuer.url, { GATEWAY_MAX_PAYLOAD_BYTES: '64' });
    try {
      const device = await connectDevice(small.gateway.mqttUrl, 'big-1', await issuer.token('big-1', T));
      const inbox = new Inbox(device);
      await device.subscribeAsync(mqttDeviceTopic(T, 'big-1', 'error'), { qos: 1 });
      await device.publishAsync(mqttDeviceTopic(T, 'big-1', 'telemetry'), Buffer.alloc(65, 1), { qos: 1 });
      await inbox.next(mqttDeviceTopic(T, 'big-1', 'error'));
      expect(
        inbox.decode(mqttDeviceTopic(T, 'big-1', 'error'), 'io.edgefl.device.MessageAck')[0]!.errorCode,
      ).toBe('payload_too_large');
      expect(await busCount(small.bus, KAFKA_TOPICS.deadLetter.name)).toBe(0);
      expect(
        await metric(small.gateway.url, 'edgefl_gateway_refused_total', { reason: 'payload_too_large' }),
      ).toBe(1);
      await device.endAsync();
    } finally {
      await small.stop();
    }
  });

  it('refuses bad credentials with the proper CONNACK code and a counted reason', async () => {
    const id = 'pos-auth';
    const cases: Array<[string, Parameters<typeof connackCode>[1], number, string]> = [
      ['no password', { clientId: id, username: id }, 4, 'missing_credentials'],
      ['garbage token', { clientId: id, username: id, password: 'abc.def.ghi' }, 4, 'malformed_token'],
      [
        'expired',
        {
          clientId: id,
          username: id,
          password: await issuer.token(id, T, { issuedAtS: 1_000, expiresInS: 60 }),
        },
        4,
        'expired',
      ],
      [
        'wrong audience',
        { clientId: id, username: id, password: await issuer.token(id, T, { audience: 'other' }) },
        4,
        'claims_mismatch',
      ],
      [
        'wrong issuer',
        { clientId: id, username: id, password: await issuer.token(id, T, { issuer: 'mallory' }) },
        4,
        'claims_mismatch',
      ],
      [
        'unknown key',
        { clientId: id, username: id, password: await issuer.token(id, T, { unpublishedKey: true }) },
        4,
        'unknown_key',
      ],
      [
        'another device',
        { clientId: id, username: id, password: await issuer.token('pos-other', T) },
        4,
        'username_mismatch',
      ],
      [
        'client id not the device',
        { clientId: 'x', username: id, password: await issuer.token(id, T) },
        2,
        'client_id_mismatch',
      ],
    ];
    const tampered = await issuer.token(id, T);
    cases.push([
      'tampered signature',
      { clientId: id, username: id, password: `${tampered.slice(0, -3)}AAA` },
      4,
      'bad_signature',
    ]);
    for (const [what, options, code, reason] of cases) {
      const before = await metric(gw.gateway.url, 'edgefl_gateway_refused_total', {
        stage: 'connect',
        reason,
      });
      expect(await connackCode(mqttUrl, options), what).toBe(code);
      expect(
        await metric(gw.gateway.url, 'edgefl_gateway_refused_total', { stage: 'connect', reason }),
        what,
      ).toBe(before + 1);
    }
    // the broker kept serving
    const ok = await connectDevice(mqttUrl, id, await issuer.token(id, T));
    await ok.endAsync();
  });

  it('refetches the JWKS when a token names a key id it has not seen (rotation)', async () => {
    await issuer.rotate();
    const fetches = issuer.jwksFetches;
    const device = await connectDevice(mqttUrl, 'pos-rot', await issuer.token('pos-rot', T));
    expect(issuer.jwksFetches).toBeGreaterThan(fetches);
    await device.endAsync();
  });

  it('closes a revoked device within seconds of the lifecycle event and refuses it afterwards', async () => {
    const id = `pos-rev-${randomUUID().slice(0, 6)}`;
    const device = await connectDevice(mqttUrl, id, await issuer.token(id, T));
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const revoked: DeviceLifecycle = {
      eventId: randomUUID(),
      tenant: T,
      deviceId: id,
      event: 'REVOKED',
      publicKey: null,
      keyId: null,
      previousKeyId: null,
      reason: 'stolen',
      tokensNotBefore: Date.now(),
      timestamp: Date.now(),
    };
    await gw.bus.publish(KAFKA_TOPICS.deviceLifecycle.name, [{ value: revoked }]);
    await closed;
    expect(
      await connackCode(mqttUrl, { clientId: id, username: id, password: await issuer.token(id, T) }),
    ).toBe(5);
    const reader = await readBus(gw.bus, [KAFKA_TOPICS.devicePresence.name]);
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${gw.dataDir}/bus.sqlite`));
    await eventually('OFFLINE AUTH_REJECTED presence', async () => {
      for (const r of reader.records) {
        const p = await codec.decode(KAFKA_TOPICS.devicePresence.name, r.value);
        if (p.deviceId === id && p.status === 'OFFLINE' && p.reason === 'AUTH_REJECTED') return true;
      }
      return undefined;
    });
    await reader.close();
  });

  it('refuses tokens issued before a key rotation, accepts newer ones', async () => {
    const id = `pos-kr-${randomUUID().slice(0, 6)}`;
    const old = await issuer.token(id, T, { issuedAtS: Math.floor(Date.now() / 1000) - 120 });
    const rotated: DeviceLifecycle = {
      eventId: randomUUID(),
      tenant: T,
      deviceId: id,
      event: 'KEY_ROTATED',
      publicKey: Buffer.alloc(32, 9).toString('base64url'),
      keyId: 'new',
      previousKeyId: 'old',
      reason: null,
      tokensNotBefore: Date.now() - 60_000,
      timestamp: Date.now(),
    };
    await gw.bus.publish(KAFKA_TOPICS.deviceLifecycle.name, [{ value: rotated }]);
    await eventually('the rotation applied', async () =>
      (await connackCode(mqttUrl, { clientId: id, username: id, password: old })) === 5 ? true : undefined,
    );
    expect(
      await connackCode(mqttUrl, { clientId: id, username: id, password: await issuer.token(id, T) }),
    ).toBe(0);
  });

  it('closes a session when its token expires, with presence AUTH_EXPIRED', async () => {
    const id = `pos-exp-${randomUUID().slice(0, 6)}`;
    const device = await connectDevice(mqttUrl, id, await issuer.token(id, T, { expiresInS: 1 }));
    await new Promise<void>((resolve) => device.once('close', () => resolve()));
    const reader = await readBus(gw.bus, [KAFKA_TOPICS.devicePresence.name]);
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${gw.dataDir}/bus.sqlite`));
    const seen = await eventually('ONLINE then OFFLINE AUTH_EXPIRED', async () => {
      const mine = [];
      for (const r of reader.records) {
        const p = await codec.decode(KAFKA_TOPICS.devicePresence.name, r.value);
        if (p.deviceId === id) mine.push(`${p.status}:${p.reason}`);
      }
      return mine.length >= 2 ? mine : undefined;
    });
    await reader.close();
    expect(seen).toEqual(['ONLINE:CONNECTED', 'OFFLINE:AUTH_EXPIRED']);
  });

  it('drains in order: in-flight QoS 1 reaches the bus, sessions end with GATEWAY_SHUTDOWN, new connects are refused', async () => {
    const other = await startGateway(issuer.url);
    const id = 'pos-drain';
    const device = await connectDevice(other.gateway.mqttUrl, id, await issuer.token(id, T));
    await device.publishAsync(
      mqttDeviceTopic(T, id, 'ota-status'),
      encodeUp('io.edgefl.ota.OtaStatus', T, id),
      { qos: 1 },
    );
    const reader = await readBus(other.bus, [KAFKA_TOPICS.devicePresence.name]);
    const codec = new TopicCodec(new EmbeddedSchemaRegistry(`${other.dataDir}/bus.sqlite`));
    await eventually('ONLINE presence', async () => reader.records.length >= 1 || undefined);
    await reader.close();
    const url = other.gateway.mqttUrl;
    const dataDir = other.dataDir;
    await other.gateway.close();
    expect(await connackCode(url, { clientId: id, username: id, password: 'x' }).catch(() => -1)).toBe(-1);
    // the presence records written during the drain are in the bus file
    const again = await startGateway(issuer.url, {}, dataDir);
    try {
      const all = await readBus(again.bus, [KAFKA_TOPICS.devicePresence.name]);
      await eventually('OFFLINE GATEWAY_SHUTDOWN presence', async () => {
        for (const r of all.records) {
          const p = await codec.decode(KAFKA_TOPICS.devicePresence.name, r.value);
          if (p.deviceId === id && p.reason === 'GATEWAY_SHUTDOWN') return true;
        }
        return undefined;
      });
      await all.close();
      expect(await busCount(again.bus, KAFKA_TOPICS.otaStatus.name)).toBe(1);
    } finally {
      await again.stop();
    }
    device.end(true);
  });
});
