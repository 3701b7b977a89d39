import { describe, expect, it } from 'vitest';
import { MQTT_CHANNELS, type MqttChannel } from '@edgefl/contracts';
import { UP_ROUTES } from '../uplink/channels.js';
import {
  UP_CHANNELS,
  authorizePublish,
  authorizeSubscribe,
  isTopicSegment,
  type DeviceIdentity,
} from './acl.js';

const me: DeviceIdentity = {
  tenant: 'acme',
  deviceId: 'pos-1',
  group: null,
  via: 'token',
  issuedAt: 0,
  expiresAt: null,
};
const reason = (d: { ok: boolean; reason?: string }) => (d.ok ? 'ok' : d.reason);

describe('publish ACL', () => {
  it('lets a device publish only on its own up channels, never retained', () => {
    for (const channel of Object.keys(MQTT_CHANNELS) as MqttChannel[]) {
      const own = authorizePublish(me, `edgefl/acme/pos-1/${channel}`, false);
      expect(reason(own), channel).toBe(
        MQTT_CHANNELS[channel].direction === 'down' ? 'not_an_up_channel' : 'ok',
      );
    }
    expect(reason(authorizePublish(me, 'edgefl/acme/pos-1/telemetry', true))).toBe('retained_publish');
    expect(reason(authorizePublish(me, 'edgefl/acme/pos-1/fl-update/reply', false))).toBe(
      'not_an_up_channel',
    );
    expect(reason(authorizePublish(me, 'edgefl/acme/broadcast/release', false))).toBe('not_an_up_channel');
  });

  it('refuses other devices, other tenants, $SYS, unknown channels and malformed topics with their reason', () => {
    expect(reason(authorizePublish(me, 'edgefl/acme/pos-2/telemetry', false))).toBe('other_device');
    expect(reason(authorizePublish(me, 'edgefl/globex/pos-1/telemetry', false))).toBe('other_tenant');
    expect(reason(authorizePublish(me, '$SYS/broker/x', false))).toBe('sys_topic');
    expect(reason(authorizePublish(me, 'edgefl/acme/pos-1/gossip', false))).toBe('unknown_channel');
    for (const bad of [
      '',
      'edgefl',
      'edgefl/acme//telemetry',
      'edgefl/../pos-1/telemetry',
      'edgefl/acme/pos-1/telemetry/x',
      'other/acme/pos-1/telemetry',
    ])
      expect(reason(authorizePublish(me, bad, false)), JSON.stringify(bad)).toBe('topic_malformed');
  });

  it('has a bus route for every up channel, and only for those', () => {
    expect(Object.keys(UP_ROUTES).sort()).toEqual([...UP_CHANNELS].sort());
  });
});

describe('subscribe ACL', () => {
  it('allows the own subtree (wildcards below the device) and the own broadcast', () => {
    for (const ok of [
      'edgefl/acme/pos-1/#',
      'edgefl/acme/pos-1/+/reply',
      'edgefl/acme/pos-1/release',
      'edgefl/acme/broadcast/#',
      'edgefl/acme/broadcast/release',
    ])
      expect(reason(authorizeSubscribe(me, ok)), ok).toBe('ok');
  });

  it('refuses wildcards above the device, other devices and tenants, $SYS and shared subscriptions', () => {
    const cases: Array<[string, string]> = [
      ['#', 'outside_own_subtree'],
      ['edgefl/#', 'outside_own_subtree'],
      ['edgefl/+/pos-1/#', 'outside_own_subtree'],
      ['edgefl/acme/+/telemetry', 'outside_own_subtree'],
      ['edgefl/acme/#', 'outside_own_subtree'],
      ['edgefl/acme/pos-2/#', 'other_device'],
      ['edgefl/globex/broadcast/#', 'other_tenant'],
      ['$SYS/#', 'sys_topic'],
      ['$share/g/edgefl/acme/pos-1/#', 'shared_subscription'],
      ['edgefl/acme/pos-1/#/x', 'filter_malformed'],
      ['edgefl/acme//x', 'filter_malformed'],
      ['edgefl/acme/../x', 'filter_malformed'],
      ['other/acme/pos-1/#', 'outside_own_subtree'],
    ];
    for (const [filter, why] of cases) expect(reason(authorizeSubscribe(me, filter)), filter).toBe(why);
  });

  it('knows the catalog segment alphabet', () => {
    expect(isTopicSegment('pos-1.a:b_c')).toBe(true);
    for (const bad of ['', '+', '#', 'a/b', '.x', 'x'.repeat(129), 7])
      expect(isTopicSegment(bad)).toBe(false);
  });
});
