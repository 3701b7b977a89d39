import { describeOnBuses } from '@edgefl/testing';
// The cross-tenant / cross-device matrix: every channel of the catalog × {own, other device of the same tenant, other
// tenant} × {publish, subscribe}, each cell's outcome asserted against the real gateway.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MQTT_CHANNELS, mqttBroadcastTopic, mqttDeviceTopic, type MqttChannel } from '@edgefl/contracts';
import type { MqttClient } from 'mqtt';
import { UP_ROUTES } from '../src/uplink/channels.js';
import {
  TestIssuer,
  busCount,
  connectDevice,
  encodeUp,
  metric,
  startGateway,
  subscribeCodes,
  type TestGateway,
} from './harness.js';

const T = `acme-${randomUUID().slice(0, 8)}`;
const OTHER_T = `globex-${randomUUID().slice(0, 8)}`;
const CHANNELS = Object.keys(MQTT_CHANNELS) as MqttChannel[];
const WHO = ['own', 'other device', 'other tenant'] as const;
type Who = (typeof WHO)[number];

const topicOf = (who: Who, channel: MqttChannel) =>
  who === 'own'
    ? mqttDeviceTopic(T, 'me', channel)
    : who === 'other device'
      ? mqttDeviceTopic(T, 'neighbour', channel)
      : mqttDeviceTopic(OTHER_T, 'stranger', channel);

/** What must happen to a publish: accepted onto the bus, or refused for this reason. */
function expectedPublish(who: Who, channel: MqttChannel): string {
  if (who === 'other device') return 'other_device';
  if (who === 'other tenant') return 'other_tenant';
  return MQTT_CHANNELS[channel].direction === 'down' ? 'not_an_up_channel' : 'accepted';
}

describeOnBuses('cross-tenant / cross-device isolation matrix', () => {
  let issuer: TestIssuer;
  let gw: TestGateway;
  let me: MqttClient;

  beforeAll(async () => {
    issuer = await TestIssuer.start();
    gw = await startGateway(issuer.url, {
      GATEWAY_ABUSE_LIMIT: '100000',
      GATEWAY_RATE_LIMIT_BURST: '100000',
    });
    me = await connectDevice(gw.gateway.mqttUrl, 'me', await issuer.token('me', T));
  });
  afterAll(async () => {
    await me?.endAsync();
    await gw?.stop();
    await issuer?.stop();
  });

  for (const channel of CHANNELS) {
    for (const who of WHO) {
      const expected = expectedPublish(who, channel);
      it(`publish ${channel} as ${who}: ${expected}`, async () => {
        const route = UP_ROUTES[channel];
        // a payload that is valid for the topic it is sent on: only the ACL decides the cell
        const [tenant, device] = topicOf(who, channel).split('/').slice(1, 3) as [string, string];
        const payload = route
          ? encodeUp(route.schema, tenant, device)
          : Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]);
        const before = route ? await busCount(gw.bus, route.topic) : 0;
        const refusedBefore = await metric(gw.gateway.url, 'edgefl_gateway_refused_total', {
          stage: 'publish',
          reason: expected,
        });
        await me.publishAsync(topicOf(who, channel), payload, { qos: 1 });
        if (expected === 'accepted') {
          expect(await busCount(gw.bus, route!.topic)).toBe(before + 1);
        } else {
          if (route) expect(await busCount(gw.bus, route.topic)).toBe(before);
          expect(
            await metric(gw.gateway.url, 'edgefl_gateway_refused_total', {
              stage: 'publish',
              reason: expected,
            }),
          ).toBe(refusedBefore + 1);
        }
      });
      const allowed = who === 'own';
      it(`subscribe ${channel} as ${who}: ${allowed ? 'granted' : 'refused'}`, async () => {
        expect(await subscribeCodes(me, topicOf(who, channel))).toEqual([allowed ? 1 : 128]);
      });
    }
  }

  it('broadcast: own tenant readable, other tenant not, and nobody publishes there', async () => {
    const codes = await subscribeCodes(me, [
      mqttBroadcastTopic(T, 'release'),
      `edgefl/${T}/broadcast/#`,
      mqttBroadcastTopic(OTHER_T, 'release'),
    ]);
    expect(codes).toEqual([1, 1, 128]);
    const before = await metric(gw.gateway.url, 'edgefl_gateway_refused_total', {
      reason: 'not_an_up_channel',
    });
    await me.publishAsync(mqttBroadcastTopic(T, 'release'), Buffer.from('x'), { qos: 1 });
    expect(
      await metric(gw.gateway.url, 'edgefl_gateway_refused_total', { reason: 'not_an_up_channel' }),
    ).toBe(before + 1);
  });

  it('refuses wildcards outside the own subtree, $SYS, shared subscriptions and malformed filters', async () => {
    const filters = [
      '#',
      '+/#',
      'edgefl/#',
      `edgefl/+/me/telemetry`,
      `edgefl/${T}/+/telemetry`,
      `edgefl/${T}/#`,
      '$SYS/#',
      '$share/g/edgefl/#',
      `edgefl/${T}//telemetry`,
      `edgefl/${T}/../telemetry`,
    ];
    expect(await subscribeCodes(me, filters)).toEqual(filters.map(() => 128));
    expect(await subscribeCodes(me, [`edgefl/${T}/me/#`, `edgefl/${T}/me/+/reply`])).toEqual([1, 1]);
  });

  it('refuses retained publishes and closes a connection after repeated abuse', async () => {
    const strict = await startGateway(issuer.url, { GATEWAY_ABUSE_LIMIT: '5' });
    try {
      const bad = await connectDevice(strict.gateway.mqttUrl, 'abuser', await issuer.token('abuser', T));
      const closed = new Promise<void>((resolve) => bad.once('close', () => resolve()));
      await bad.publishAsync(
        mqttDeviceTopic(T, 'abuser', 'telemetry'),
        encodeUp('io.edgefl.device.DeviceTelemetry', T, 'abuser'),
        {
          qos: 1,
          retain: true,
        },
      );
      expect(
        await metric(strict.gateway.url, 'edgefl_gateway_refused_total', { reason: 'retained_publish' }),
      ).toBe(1);
      for (let i = 0; i < 5; i++)
        bad.publish(mqttDeviceTopic(T, 'someone-else', 'telemetry'), 'x', { qos: 0 });
      await closed;
      expect(await metric(strict.gateway.url, 'edgefl_gateway_disconnects_total', { reason: 'abuse' })).toBe(
        1,
      );
      // everyone else is still served
      const good = await connectDevice(strict.gateway.mqttUrl, 'good', await issuer.token('good', T));
      await good.publishAsync(
        mqttDeviceTopic(T, 'good', 'telemetry'),
        encodeUp('io.edgefl.device.DeviceTelemetry', T, 'good'),
        {
          qos: 1,
        },
      );
      await good.endAsync();
      bad.end(true);
    } finally {
      await strict.stop();
    }
  });

  it('rate-limits a flooding device without starving the others', async () => {
    const limited = await startGateway(issuer.url, {
      GATEWAY_RATE_LIMIT_PER_S: '1',
      GATEWAY_RATE_LIMIT_BURST: '5',
      GATEWAY_ABUSE_LIMIT: '100000',
    });
    try {
      const flood = await connectDevice(limited.gateway.mqttUrl, 'flood', await issuer.token('flood', T));
      const topic = mqttDeviceTopic(T, 'flood', 'telemetry');
      const started = Date.now();
      await Promise.all(
        Array.from({ length: 50 }, () =>
          flood.publishAsync(topic, encodeUp('io.edgefl.device.DeviceTelemetry', T, 'flood'), { qos: 1 }),
        ),
      );
      const stored = await busCount(limited.bus, 'edgefl.device.telemetry.v1');
      // the bucket lets through the burst plus 1 message per elapsed second, however slow this machine is
      const allowed = 5 + Math.ceil((Date.now() - started) / 1000);
      expect(stored).toBeGreaterThanOrEqual(5);
      expect(stored).toBeLessThanOrEqual(allowed);
      expect(
        await metric(limited.gateway.url, 'edgefl_gateway_refused_total', { reason: 'rate_limited' }),
      ).toBe(50 - stored);
      const calm = await connectDevice(limited.gateway.mqttUrl, 'calm', await issuer.token('calm', T));
      await calm.publishAsync(
        mqttDeviceTopic(T, 'calm', 'telemetry'),
        encodeUp('io.edgefl.device.DeviceTelemetry', T, 'calm'),
        {
          qos: 1,
        },
      );
      expect(await busCount(limited.bus, 'edgefl.device.telemetry.v1')).toBe(stored + 1);
      await calm.endAsync();
      await flood.endAsync();
    } finally {
      await limited.stop();
    }
  });
});
