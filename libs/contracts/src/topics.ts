// The topic catalog: the only place Kafka topic names and MQTT topic shapes live.
import { ContractError } from './errors.js';
import type { RecordName, RecordTypes, SchemaName } from './generated/types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export type CleanupPolicy = 'delete' | 'compact' | 'compact,delete';

/** One Kafka topic: its value schema (subject `<name>-value`), the field its key comes from, and its config. */
export interface KafkaTopicSpec {
  /** `edgefl.<domain>.<event>.v<N>` */
  readonly name: string;
  /** Full name of the value schema. */
  readonly schema: SchemaName;
  /** Field of the value whose (string) value is the record key: the entity whose events must stay in order. */
  readonly keyField: string;
  readonly partitions: number;
  /** Kafka `retention.ms`; -1 keeps records forever. */
  readonly retentionMs: number;
  readonly cleanupPolicy: CleanupPolicy;
  readonly description: string;
}

/**
 * Every Kafka topic, keyed by a short name. Lifecycle events of one entity that must stay ordered share one topic
 * keyed by that entity: a round's opened/closed/result (edgefl.fl.round.v1, key roundId) and a release's
 * manifest/transitions (edgefl.registry.release.v1, key releaseId).
 */
export const KAFKA_TOPICS = {
  deviceTelemetry: {
    name: 'edgefl.device.telemetry.v1',
    schema: 'io.edgefl.device.DeviceTelemetry',
    keyField: 'deviceId',
    partitions: 12,
    retentionMs: 7 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Device heartbeats (resources, active model, network).',
  },
  devicePresence: {
    name: 'edgefl.device.presence.v1',
    schema: 'io.edgefl.device.DevicePresence',
    keyField: 'deviceId',
    partitions: 12,
    retentionMs: 7 * DAY_MS,
    cleanupPolicy: 'compact,delete',
    description: 'Device online/offline; compacted to the latest state per device.',
  },
  deviceLifecycle: {
    name: 'edgefl.device.lifecycle.v1',
    schema: 'io.edgefl.device.DeviceLifecycle',
    keyField: 'deviceId',
    partitions: 6,
    retentionMs: -1,
    cleanupPolicy: 'compact',
    description:
      'Device identity changes from the registry (registered, revoked, key rotated); compacted to the latest per device.',
  },
  inferenceLog: {
    name: 'edgefl.inference.log.v1',
    schema: 'io.edgefl.inference.InferenceLog',
    keyField: 'deviceId',
    partitions: 12,
    retentionMs: 3 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'One record per prediction, edge or cloud.',
  },
  inferenceRequest: {
    name: 'edgefl.inference.request.v1',
    schema: 'io.edgefl.inference.InferenceRequest',
    keyField: 'deviceId',
    partitions: 12,
    retentionMs: 1 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Low-confidence inputs devices escalate to the cloud tier (relayed by the gateway).',
  },
  inferenceReply: {
    name: 'edgefl.inference.reply.v1',
    schema: 'io.edgefl.inference.InferenceReply',
    keyField: 'correlationId',
    partitions: 12,
    retentionMs: 1 * DAY_MS,
    cleanupPolicy: 'delete',
    description:
      "The cloud tier's answers to escalations; the gateway delivers each to its device by correlation id.",
  },
  flRound: {
    name: 'edgefl.fl.round.v1',
    schema: 'io.edgefl.fl.RoundEvent',
    keyField: 'roundId',
    partitions: 6,
    retentionMs: 30 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Round lifecycle: opened, closed, result (ordered per round).',
  },
  flUpdate: {
    name: 'edgefl.fl.update.v1',
    schema: 'io.edgefl.fl.FlUpdate',
    keyField: 'roundId',
    partitions: 12,
    retentionMs: 7 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Sealed or masked, signed model updates; keyed by round so one consumer sees a whole round.',
  },
  flSecAgg: {
    name: 'edgefl.fl.secagg.v1',
    schema: 'io.edgefl.fl.SecAggMessage',
    keyField: 'roundId',
    partitions: 6,
    retentionMs: 7 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Secure aggregation protocol messages (Bonawitz et al. 2017), ordered per round.',
  },
  modelVersion: {
    name: 'edgefl.model.version.v1',
    schema: 'io.edgefl.model.ModelVersionCreated',
    keyField: 'modelId',
    partitions: 3,
    retentionMs: -1,
    cleanupPolicy: 'delete',
    description: 'New model versions stored by the registry.',
  },
  registryRelease: {
    name: 'edgefl.registry.release.v1',
    schema: 'io.edgefl.registry.ReleaseEvent',
    keyField: 'releaseId',
    partitions: 3,
    retentionMs: -1,
    cleanupPolicy: 'delete',
    description: 'Release lifecycle: signed manifest, then rollout transitions (ordered per release).',
  },
  otaStatus: {
    name: 'edgefl.ota.status.v1',
    schema: 'io.edgefl.ota.OtaStatus',
    keyField: 'deviceId',
    partitions: 12,
    retentionMs: 14 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'OTA progress per device.',
  },
  rolloutHealth: {
    name: 'edgefl.rollout.health.v1',
    schema: 'io.edgefl.telemetry.RolloutHealth',
    keyField: 'releaseId',
    partitions: 3,
    retentionMs: 30 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Windowed SLIs of a release stage, read by rollout gates.',
  },
  telemetryDrift: {
    name: 'edgefl.telemetry.drift.v1',
    schema: 'io.edgefl.telemetry.DriftAlert',
    keyField: 'modelId',
    partitions: 3,
    retentionMs: 30 * DAY_MS,
    cleanupPolicy: 'delete',
    description:
      "Drift alerts: a model version's prediction, confidence or feature distribution left its baseline (the aggregator may open a round).",
  },
  telemetrySlo: {
    name: 'edgefl.telemetry.slo.v1',
    schema: 'io.edgefl.telemetry.SloAlert',
    keyField: 'tenant',
    partitions: 3,
    retentionMs: 30 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Multi-window, multi-burn-rate SLO alerts firing and resolving, ordered per tenant.',
  },
  deadLetter: {
    name: 'edgefl.bus.deadletter.v1',
    schema: 'io.edgefl.bus.DeadLetter',
    keyField: 'originalTopic',
    partitions: 3,
    retentionMs: 30 * DAY_MS,
    cleanupPolicy: 'delete',
    description: 'Records consumers gave up on, with the original bytes and the reason.',
  },
} as const satisfies Record<string, KafkaTopicSpec>;

type Catalog = typeof KAFKA_TOPICS;
export type KafkaTopicKey = keyof Catalog;
/** Every Kafka topic name of the catalog. */
export type KafkaTopicName = Catalog[KafkaTopicKey]['name'];
type EntryOf<T extends KafkaTopicName> = Extract<Catalog[KafkaTopicKey], { name: T }>;
/** The value schema name of a topic. */
export type KafkaTopicSchema<T extends KafkaTopicName> = EntryOf<T>['schema'];
/** The TypeScript type of a topic's values. */
export type KafkaTopicValue<T extends KafkaTopicName> = RecordTypes[KafkaTopicSchema<T>];

const byName = new Map<string, KafkaTopicSpec>(Object.values(KAFKA_TOPICS).map((t) => [t.name, t]));

export const KAFKA_TOPIC_NAMES = [...byName.keys()] as KafkaTopicName[];

export function isKafkaTopicName(name: string): name is KafkaTopicName {
  return byName.has(name);
}

/** The catalog entry of a topic name; throws ContractError UNKNOWN_TOPIC for a name not in the catalog. */
export function kafkaTopic<T extends KafkaTopicName>(name: T): EntryOf<T>;
export function kafkaTopic(name: string): KafkaTopicSpec;
export function kafkaTopic(name: string): KafkaTopicSpec {
  const spec = typeof name === 'string' ? byName.get(name) : undefined;
  if (!spec)
    throw new ContractError(
      'UNKNOWN_TOPIC',
      `unknown Kafka topic ${JSON.stringify(String(name)).slice(0, 200)}`,
    );
  return spec;
}

/** Schema registry subject of a topic's values (TopicNameStrategy). */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/** The record key of a value on its topic (the entity id its keyField names). */
export function kafkaKey<T extends KafkaTopicName>(topic: T, value: KafkaTopicValue<T>): string {
  const spec = kafkaTopic(topic);
  const key = (value as unknown as Record<string, unknown>)[spec.keyField];
  if (typeof key !== 'string' || key.length === 0) {
    throw new ContractError(
      'INVALID_VALUE',
      `${topic}: key field ${spec.keyField} must be a non-empty string`,
      {
        topic,
        paths: [spec.keyField],
      },
    );
  }
  return key;
}

// ---- MQTT ----

export type MqttScope = 'device' | 'broadcast';

export interface MqttChannelSpec {
  /** Where the channel exists: under a device (`edgefl/<tenant>/<device>/<channel>`) and/or the tenant broadcast. */
  readonly scopes: readonly MqttScope[];
  /** up = device publishes, down = devices subscribe, both = either. */
  readonly direction: 'up' | 'down' | 'both';
  /** Schema of the payload (Avro single-object encoding). */
  readonly schema: RecordName;
  /** Schema of `<topic>/reply`, or null when the channel has no reply. Replies carry the request's correlation id. */
  readonly replySchema: RecordName | null;
  readonly qos: 0 | 1;
  readonly retain: boolean;
}

/** Every MQTT channel. aedes speaks MQTT 3.1.1, so request/response is a correlation id in the payload + `/reply`. */
export const MQTT_CHANNELS = {
  telemetry: {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.device.DeviceTelemetry',
    replySchema: null,
    qos: 0,
    retain: false,
  },
  presence: {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.device.DevicePresence',
    replySchema: null,
    qos: 1,
    retain: false,
  },
  inference: {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.inference.InferenceLog',
    replySchema: null,
    qos: 0,
    retain: false,
  },
  infer: {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.inference.InferenceRequest',
    replySchema: 'io.edgefl.inference.InferenceReply',
    qos: 1,
    retain: false,
  },
  'fl-update': {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.fl.FlUpdate',
    replySchema: 'io.edgefl.device.MessageAck',
    qos: 1,
    retain: false,
  },
  secagg: {
    scopes: ['device'],
    direction: 'both',
    schema: 'io.edgefl.fl.SecAggMessage',
    replySchema: 'io.edgefl.device.MessageAck',
    qos: 1,
    retain: false,
  },
  'ota-status': {
    scopes: ['device'],
    direction: 'up',
    schema: 'io.edgefl.ota.OtaStatus',
    replySchema: null,
    qos: 1,
    retain: false,
  },
  round: {
    scopes: ['device', 'broadcast'],
    direction: 'down',
    schema: 'io.edgefl.fl.RoundEvent',
    replySchema: null,
    qos: 1,
    retain: false,
  },
  release: {
    scopes: ['device', 'broadcast'],
    direction: 'down',
    schema: 'io.edgefl.registry.ReleaseManifest',
    replySchema: null,
    qos: 1,
    retain: true,
  },
  /** The gateway's refusal of a message on a channel without a reply topic (correlationId = the message's eventId). */
  error: {
    scopes: ['device'],
    direction: 'down',
    schema: 'io.edgefl.device.MessageAck',
    replySchema: null,
    qos: 1,
    retain: false,
  },
} as const satisfies Record<string, MqttChannelSpec>;

export type MqttChannel = keyof typeof MQTT_CHANNELS;

export const MQTT_ROOT = 'edgefl';
export const MQTT_BROADCAST = 'broadcast';
export const MQTT_REPLY = 'reply';

/** A parsed MQTT topic. */
export type MqttTopic =
  | { scope: 'device'; tenant: string; deviceId: string; channel: MqttChannel; reply: boolean }
  | { scope: 'broadcast'; tenant: string; channel: MqttChannel; reply: false };

// Tenant and device ids: letters, digits and . _ : - (no MQTT wildcards, separators, `$`, spaces or NUL), 1..128.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function isChannel(name: string): name is MqttChannel {
  return Object.hasOwn(MQTT_CHANNELS, name);
}

function checkSegment(kind: string, value: unknown): string {
  if (typeof value !== 'string' || !SEGMENT.test(value)) {
    throw new ContractError(
      'INVALID_VALUE',
      `illegal MQTT ${kind}: must be 1-128 of [A-Za-z0-9._:-] starting with a letter or digit (no wildcards, no '/')`,
      { paths: [kind] },
    );
  }
  return value;
}

function checkChannel(channel: unknown, scope: MqttScope): MqttChannel {
  if (typeof channel !== 'string' || !isChannel(channel)) {
    throw new ContractError(
      'UNKNOWN_TOPIC',
      `unknown MQTT channel ${JSON.stringify(String(channel)).slice(0, 80)}`,
    );
  }
  if (!(MQTT_CHANNELS[channel].scopes as readonly MqttScope[]).includes(scope)) {
    throw new ContractError('UNKNOWN_TOPIC', `MQTT channel ${channel} does not exist in ${scope} scope`);
  }
  return channel;
}

/** `edgefl/<tenant>/<device>/<channel>` (or `.../reply`). Rejects wildcards, empty and illegal segments. */
export function mqttDeviceTopic(
  tenant: string,
  deviceId: string,
  channel: MqttChannel,
  options: { reply?: boolean } = {},
): string {
  checkSegment('tenant', tenant);
  checkSegment('deviceId', deviceId);
  if (deviceId === MQTT_BROADCAST) {
    throw new ContractError('INVALID_VALUE', `device id "${MQTT_BROADCAST}" is reserved`, {
      paths: ['deviceId'],
    });
  }
  const ch = checkChannel(channel, 'device');
  if (options.reply && MQTT_CHANNELS[ch].replySchema === null) {
    throw new ContractError('UNKNOWN_TOPIC', `MQTT channel ${ch} has no reply topic`);
  }
  return `${MQTT_ROOT}/${tenant}/${deviceId}/${ch}${options.reply ? `/${MQTT_REPLY}` : ''}`;
}

/** `edgefl/<tenant>/broadcast/<channel>`. */
export function mqttBroadcastTopic(tenant: string, channel: MqttChannel): string {
  checkSegment('tenant', tenant);
  return `${MQTT_ROOT}/${tenant}/${MQTT_BROADCAST}/${checkChannel(channel, 'broadcast')}`;
}

/** The reply topic of a request topic (`<topic>/reply`); the channel must have replies. */
export function mqttReplyTopic(requestTopic: string): string {
  const parsed = parseMqttTopic(requestTopic);
  if (parsed.scope !== 'device' || parsed.reply) {
    throw new ContractError('UNKNOWN_TOPIC', 'only device request topics have a reply topic');
  }
  return mqttDeviceTopic(parsed.tenant, parsed.deviceId, parsed.channel, { reply: true });
}

/**
 * Parses a concrete MQTT topic of the catalog. Throws MALFORMED for a topic of another shape (wildcards, empty or
 * illegal segments, wrong root) and UNKNOWN_TOPIC for an unknown channel or a reply the channel does not have.
 */
export function parseMqttTopic(topic: string): MqttTopic {
  if (typeof topic !== 'string' || topic.length > 1024)
    throw new ContractError('MALFORMED', 'MQTT topic is not a string of at most 1024 characters');
  const parts = topic.split('/');
  if (parts[0] !== MQTT_ROOT || parts.length < 4 || parts.length > 5) {
    throw new ContractError(
      'MALFORMED',
      `MQTT topic must be ${MQTT_ROOT}/<tenant>/<device|broadcast>/<channel>[/reply]`,
    );
  }
  const [, tenant, middle, channel, tail] = parts as [string, string, string, string, string | undefined];
  if (!SEGMENT.test(tenant) || !SEGMENT.test(middle) || !SEGMENT.test(channel))
    throw new ContractError('MALFORMED', 'MQTT topic has an empty or illegal segment');
  if (tail !== undefined && tail !== MQTT_REPLY)
    throw new ContractError('MALFORMED', `MQTT topic may only end in /${MQTT_REPLY}`);
  if (middle === MQTT_BROADCAST) {
    if (tail !== undefined) throw new ContractError('UNKNOWN_TOPIC', 'broadcast topics have no reply');
    return { scope: 'broadcast', tenant, channel: checkChannel(channel, 'broadcast'), reply: false };
  }
  const ch = checkChannel(channel, 'device');
  const reply = tail !== undefined;
  if (reply && MQTT_CHANNELS[ch].replySchema === null)
    throw new ContractError('UNKNOWN_TOPIC', `MQTT channel ${ch} has no reply topic`);
  return { scope: 'device', tenant, deviceId: middle, channel: ch, reply };
}

/** Which schema a (parsed or raw) MQTT topic carries. */
export function mqttTopicSchema(topic: MqttTopic | string): RecordName {
  const parsed = typeof topic === 'string' ? parseMqttTopic(topic) : topic;
  const spec: MqttChannelSpec = MQTT_CHANNELS[parsed.channel];
  return parsed.reply ? spec.replySchema! : spec.schema;
}

/**
 * Subscription filters (these, unlike topics, contain `+`): omitted tenant/device match any.
 * e.g. mqttDeviceFilter('telemetry') === 'edgefl/+/+/telemetry'.
 */
export function mqttDeviceFilter(
  channel: MqttChannel,
  options: { tenant?: string; deviceId?: string; reply?: boolean } = {},
): string {
  const tenant = options.tenant === undefined ? '+' : checkSegment('tenant', options.tenant);
  const device = options.deviceId === undefined ? '+' : checkSegment('deviceId', options.deviceId);
  const ch = checkChannel(channel, 'device');
  if (options.reply && MQTT_CHANNELS[ch].replySchema === null)
    throw new ContractError('UNKNOWN_TOPIC', `MQTT channel ${ch} has no reply topic`);
  return `${MQTT_ROOT}/${tenant}/${device}/${ch}${options.reply ? `/${MQTT_REPLY}` : ''}`;
}

export function mqttBroadcastFilter(channel: MqttChannel, options: { tenant?: string } = {}): string {
  const tenant = options.tenant === undefined ? '+' : checkSegment('tenant', options.tenant);
  return `${MQTT_ROOT}/${tenant}/${MQTT_BROADCAST}/${checkChannel(channel, 'broadcast')}`;
}
