// Who may publish and subscribe where (docs/architecture.md, security model): a device only under edgefl/<tenant>/<device>/… (its own ids, as
// its credentials say) and it reads edgefl/<tenant>/broadcast/…; everything else is refused with a reason.
import {
  ContractError,
  MQTT_BROADCAST,
  MQTT_CHANNELS,
  MQTT_ROOT,
  parseMqttTopic,
  type MqttChannel,
} from '@edgefl/contracts';

// The catalog's tenant/device segment alphabet (libs/contracts topics.ts): an id that is not one names no topic.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** True when `value` can be a tenant or device level of an edgefl topic. */
export function isTopicSegment(value: unknown): value is string {
  return typeof value === 'string' && SEGMENT.test(value);
}

/** An authenticated device, as its token (or client certificate) names it. */
export interface DeviceIdentity {
  tenant: string;
  deviceId: string;
  group: string | null;
  /** How it proved who it is; `broker`: an external broker authenticated it (external-broker mode). */
  via: 'token' | 'certificate' | 'broker';
  /** Token issue time (ms), compared with the registry's tokensNotBefore; null for certificates. */
  issuedAt: number | null;
  /** Token expiry (ms); the session is closed then. Null for certificates. */
  expiresAt: number | null;
}

export const PUBLISH_REFUSALS = [
  'topic_malformed',
  'sys_topic',
  'unknown_channel',
  'other_tenant',
  'other_device',
  'not_an_up_channel',
  'retained_publish',
] as const;
export const SUBSCRIBE_REFUSALS = [
  'filter_malformed',
  'sys_topic',
  'shared_subscription',
  'other_tenant',
  'other_device',
  'outside_own_subtree',
] as const;
export type PublishRefusal = (typeof PUBLISH_REFUSALS)[number];
export type SubscribeRefusal = (typeof SUBSCRIBE_REFUSALS)[number];

export type PublishDecision =
  { ok: true; channel: MqttChannel } | { ok: false; reason: PublishRefusal; detail: string };
export type SubscribeDecision = { ok: true } | { ok: false; reason: SubscribeRefusal; detail: string };

/** Channels a device may publish on: the catalog's up (and both-way) channels, never a reply topic. */
export const UP_CHANNELS = (Object.keys(MQTT_CHANNELS) as MqttChannel[]).filter(
  (c) =>
    MQTT_CHANNELS[c].direction !== 'down' &&
    (MQTT_CHANNELS[c].scopes as readonly string[]).includes('device'),
);

const refusePublish = (reason: PublishRefusal, detail: string): PublishDecision => ({
  ok: false,
  reason,
  detail,
});

/** May this device publish on this topic? A retained publish from a device is always refused. */
export function authorizePublish(identity: DeviceIdentity, topic: string, retain: boolean): PublishDecision {
  if (topic.startsWith('$')) return refusePublish('sys_topic', 'topics starting with $ are reserved');
  let parsed;
  try {
    parsed = parseMqttTopic(topic);
  } catch (error) {
    const code = error instanceof ContractError ? error.code : 'MALFORMED';
    return code === 'UNKNOWN_TOPIC'
      ? refusePublish('unknown_channel', (error as Error).message)
      : refusePublish('topic_malformed', (error as Error).message);
  }
  if (parsed.tenant !== identity.tenant) return refusePublish('other_tenant', 'topic names another tenant');
  if (parsed.scope === 'broadcast')
    return refusePublish('not_an_up_channel', 'devices do not publish on broadcast topics');
  if (parsed.deviceId !== identity.deviceId)
    return refusePublish('other_device', 'topic names another device');
  if (parsed.reply || MQTT_CHANNELS[parsed.channel].direction === 'down')
    return refusePublish(
      'not_an_up_channel',
      `channel ${parsed.channel}${parsed.reply ? '/reply' : ''} is down only`,
    );
  if (retain) return refusePublish('retained_publish', 'devices may not publish retained messages');
  return { ok: true, channel: parsed.channel };
}

const refuseSubscribe = (reason: SubscribeRefusal, detail: string): SubscribeDecision => ({
  ok: false,
  reason,
  detail,
});

/**
 * May this device subscribe to this filter? Its own subtree (`edgefl/<tenant>/<device>/…`, wildcards allowed below
 * the device level) and its tenant's broadcast (`edgefl/<tenant>/broadcast/…`); never `$SYS`, shared subscriptions,
 * wildcards at the tenant or device level, or another tenant or device.
 */
export function authorizeSubscribe(identity: DeviceIdentity, filter: string): SubscribeDecision {
  if (filter.startsWith('$share/'))
    return refuseSubscribe('shared_subscription', 'shared subscriptions are for gateways');
  if (filter.startsWith('$')) return refuseSubscribe('sys_topic', 'topics starting with $ are reserved');
  if (filter.length === 0 || filter.length > 1024)
    return refuseSubscribe('filter_malformed', 'a filter has 1-1024 characters');
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    const wildcard = level === '+' || (level === '#' && i === levels.length - 1);
    if (!wildcard && !isTopicSegment(level))
      return refuseSubscribe('filter_malformed', 'a filter level is empty, illegal or a misplaced wildcard');
  }
  if (levels[0] !== MQTT_ROOT)
    return refuseSubscribe('outside_own_subtree', `filters start with ${MQTT_ROOT}/`);
  const tenant = levels[1];
  const middle = levels[2];
  if (tenant === undefined || tenant === '+' || tenant === '#')
    return refuseSubscribe('outside_own_subtree', 'the tenant level must be named');
  if (tenant !== identity.tenant) return refuseSubscribe('other_tenant', 'filter names another tenant');
  if (middle === undefined || middle === '+' || middle === '#')
    return refuseSubscribe('outside_own_subtree', 'the device level must be named');
  if (middle === MQTT_BROADCAST) return { ok: true };
  if (middle !== identity.deviceId) return refuseSubscribe('other_device', 'filter names another device');
  return { ok: true };
}
