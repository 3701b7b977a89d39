import { createHash, randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import {
  ContractError,
  KAFKA_TOPICS,
  MQTT_CHANNELS,
  SingleObjectCodec,
  mqttDeviceTopic,
  type InferenceReply,
  type MessageAck,
  type MqttChannel,
} from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { DeviceIdentity } from '../authz/acl.js';
import type { GatewayOwnConfig } from '../config.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { DEVICE_SENDER, GATEWAY_CONFIG } from '../tokens.js';
import { UP_ROUTES, type UpRoute } from './channels.js';
import type { DeviceSender } from './device-sender.js';

/** Why a device message was refused (counted as `edgefl_gateway_refused_total{stage="payload"}`). */
export type PayloadRefusal =
  | 'payload_too_large'
  | 'rate_limited'
  | 'truncated'
  | 'bad_magic'
  | 'unknown_fingerprint'
  | 'wrong_schema'
  | 'invalid_value'
  | 'malformed'
  | 'identity_mismatch';

export type UplinkResult = { accepted: true } | { accepted: false; reason: PayloadRefusal; message: string };

/** The bus did not accept a record in time: the message is not acknowledged, the device sends it again. */
export class BusUnavailableError extends Error {
  override readonly name = 'BusUnavailableError';
}

const CONTRACT_REFUSALS: Record<string, PayloadRefusal> = {
  TRUNCATED: 'truncated',
  BAD_MAGIC: 'bad_magic',
  UNKNOWN_FINGERPRINT: 'unknown_fingerprint',
  INCOMPATIBLE_SCHEMA: 'wrong_schema',
  INVALID_VALUE: 'invalid_value',
};

/**
 * The up-bridge, whichever broker delivered the message: decode the single-object Avro payload, check that the
 * tenant and device it names are the topic's and the credentials' own, re-encode it onto its Kafka topic (Confluent
 * wire format, headers tenant/device/event-id/trace-id) and resolve only once the bus accepted the record (the
 * caller acknowledges after that). Invalid payloads go to the dead-letter topic with the original bytes and the
 * device gets the refusal on its reply or error topic.
 */
@Injectable()
export class UplinkService implements OnModuleDestroy {
  private readonly codec = new SingleObjectCodec();
  /** Publishes waiting for the bus, with when they started: one watchdog timer, not one timer per message. */
  private readonly waiting = new Map<symbol, { since: number; fail: (error: Error) => void }>();
  private readonly watchdog: NodeJS.Timeout;
  /** prom-client children per channel (no label hashing per message). */
  private readonly perChannel = new Map<
    MqttChannel,
    { latency: { observe(v: number): void }; count: { inc(): void } }
  >();

  constructor(
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(DEVICE_SENDER) private readonly sender: DeviceSender,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayOwnConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {
    const limit = config.limits.busTimeoutMs;
    this.watchdog = setInterval(
      () => {
        const now = Date.now();
        for (const [key, entry] of this.waiting)
          if (now - entry.since >= limit) {
            this.waiting.delete(key);
            entry.fail(new BusUnavailableError(`the bus did not accept a record within ${limit} ms`));
          }
      },
      Math.min(1_000, limit),
    );
    this.watchdog.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.watchdog);
  }

  /** Refuses a message before decoding it (size, rate): counted, answered, not dead-lettered. */
  async refuse(
    identity: DeviceIdentity,
    channel: MqttChannel,
    reason: PayloadRefusal,
    message: string,
  ): Promise<UplinkResult> {
    this.metrics.refused.inc({ stage: 'payload', reason });
    await this.answer(identity, channel, null, { accepted: false, reason, message });
    return { accepted: false, reason, message };
  }

  async handle(
    identity: DeviceIdentity,
    channel: MqttChannel,
    topic: string,
    payload: Buffer,
    receivedAt: number,
  ): Promise<UplinkResult> {
    const route = UP_ROUTES[channel];
    if (!route) throw new Error(`channel ${channel} is not an up channel`); // the ACL lets only up channels through
    if (payload.length > this.config.limits.maxPayloadBytes)
      return this.refuse(
        identity,
        channel,
        'payload_too_large',
        `payload of ${payload.length} bytes exceeds ${this.config.limits.maxPayloadBytes}`,
      );
    let value: Record<string, unknown>;
    try {
      value = this.codec.decode(payload, route.schema) as unknown as Record<string, unknown>;
    } catch (error) {
      const code = error instanceof ContractError ? error.code : 'MALFORMED';
      return this.invalid(
        identity,
        route,
        topic,
        payload,
        null,
        CONTRACT_REFUSALS[code] ?? 'malformed',
        error,
      );
    }
    const correlation =
      typeof value[route.correlationField] === 'string' ? (value[route.correlationField] as string) : null;
    if (value['tenant'] !== identity.tenant || value[route.deviceField] !== identity.deviceId) {
      return this.invalid(
        identity,
        route,
        topic,
        payload,
        correlation,
        'identity_mismatch',
        new Error(`the payload's tenant/${route.deviceField} are not the sending device's`),
      );
    }
    const eventId = typeof value['eventId'] === 'string' ? value['eventId'] : randomUUID();
    await this.publish(route.topic, {
      value: value as never,
      eventId,
      tenant: identity.tenant,
      traceId: randomUUID().replaceAll('-', ''),
      headers: { device: identity.deviceId },
    });
    const metrics = this.channelMetrics(channel);
    metrics.count.inc();
    metrics.latency.observe((Date.now() - receivedAt) / 1000);
    if (MQTT_CHANNELS[channel].replySchema === 'io.edgefl.device.MessageAck')
      await this.answer(identity, channel, correlation, { accepted: true });
    return { accepted: true };
  }

  /** Publishes within the bus timeout; a slow bus holds the caller (backpressure), a dead one fails it. */
  private async publish(
    topic: UpRoute['topic'],
    event: Parameters<TypedBus<KafkaTopicValues>['publish']>[1][0],
  ) {
    const key = Symbol();
    try {
      await new Promise<void>((resolve, reject) => {
        this.waiting.set(key, { since: Date.now(), fail: reject });
        this.bus.publish(topic, [event]).then(
          () => resolve(),
          (error: unknown) =>
            // a record the codec refuses after decoding is a bug of ours or a schema drift: surface it, do not ack
            reject(
              new BusUnavailableError(`the bus refused the record: ${(error as Error).message}`, {
                cause: error,
              }),
            ),
        );
      });
    } finally {
      this.waiting.delete(key);
    }
  }

  private channelMetrics(channel: MqttChannel) {
    let metrics = this.perChannel.get(channel);
    if (!metrics) {
      metrics = {
        latency: this.metrics.bridgeLatency.labels(channel),
        count: this.metrics.messagesIn.labels(channel),
      };
      this.perChannel.set(channel, metrics);
    }
    return metrics;
  }

  private async invalid(
    identity: DeviceIdentity,
    route: UpRoute,
    topic: string,
    payload: Buffer,
    correlation: string | null,
    reason: PayloadRefusal,
    error: unknown,
  ): Promise<UplinkResult> {
    const message = (error as Error).message.slice(0, 500);
    this.metrics.refused.inc({ stage: 'payload', reason });
    this.metrics.deadLetters.inc({ reason });
    await this.publish(KAFKA_TOPICS.deadLetter.name, {
      value: {
        eventId: randomUUID(),
        tenant: identity.tenant,
        originalTopic: topic,
        partition: -1,
        offset: '-1',
        key: Buffer.from(identity.deviceId, 'utf8'),
        value: payload,
        headers: { 'mqtt-topic': topic, device: identity.deviceId, 'schema-expected': route.schema },
        reason: message,
        errorCode: reason,
        attempts: 1,
        consumerGroup: 'gateway',
        failedAt: Date.now(),
      },
      tenant: identity.tenant,
      headers: { device: identity.deviceId },
    });
    await this.answer(identity, route.channel, correlation ?? payloadRef(payload), {
      accepted: false,
      reason,
      message,
    });
    return { accepted: false, reason, message };
  }

  /**
   * The device's answer: a MessageAck on `<topic>/reply` for channels with one, an InferenceReply with the error for
   * `infer`, a MessageAck on `…/error` for the others (nothing for an accepted message there). Never throws: a
   * device that went away must not fail the message it sent.
   */
  private async answer(
    identity: DeviceIdentity,
    channel: MqttChannel,
    correlation: string | null,
    result: { accepted: true } | { accepted: false; reason: string; message: string },
  ): Promise<void> {
    const { tenant, deviceId } = identity;
    const now = Date.now();
    try {
      const replySchema = MQTT_CHANNELS[channel].replySchema;
      if (replySchema === 'io.edgefl.inference.InferenceReply') {
        if (result.accepted) return; // the cloud tier answers later, on the same topic
        const reply: InferenceReply = {
          eventId: randomUUID(),
          tenant,
          deviceId,
          // the contract wants a uuid here: a device whose request did not decode cannot be answered by its own id
          correlationId: correlation !== null && UUID.test(correlation) ? correlation : NIL_UUID,
          modelId: '',
          modelVersion: null,
          prediction: [],
          label: null,
          confidence: null,
          errorCode: result.reason,
          errorMessage: result.message,
          timestamp: now,
        };
        await this.sendTo(
          mqttDeviceTopic(tenant, deviceId, channel, { reply: true }),
          'infer',
          this.codec.encode(replySchema, reply),
        );
        return;
      }
      if (result.accepted && replySchema === null) return;
      const ack: MessageAck = {
        eventId: randomUUID(),
        tenant,
        correlationId: correlation ?? '',
        accepted: result.accepted,
        errorCode: result.accepted ? null : result.reason,
        errorMessage: result.accepted ? null : result.message,
        timestamp: now,
      };
      const topic =
        replySchema === null
          ? mqttDeviceTopic(tenant, deviceId, 'error')
          : mqttDeviceTopic(tenant, deviceId, channel, { reply: true });
      await this.sendTo(
        topic,
        replySchema === null ? 'error' : channel,
        this.codec.encode('io.edgefl.device.MessageAck', ack),
      );
    } catch (error) {
      this.logger.warn({ err: error, tenant, deviceId, channel }, 'could not answer a device message');
    }
  }

  /**
   * Not awaited: the answer must not hold up the acknowledgement of the message it answers (mqtt.js reads no further
   * packet, such as the answer's own PUBACK, until the message handler acknowledged, in external-broker mode).
   */
  private async sendTo(topic: string, channel: MqttChannel, payload: Buffer): Promise<void> {
    this.sender.send(topic, payload, { qos: 1 }).then(
      () => this.metrics.messagesOut.inc({ channel }),
      (error: unknown) => this.logger.warn({ err: error, channel }, 'could not answer a device message'),
    );
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** Names an undecodable payload in a refusal: `sha256:<first 16 bytes hex>` of its bytes. */
export function payloadRef(payload: Buffer): string {
  return `sha256:${createHash('sha256').update(payload).digest('hex').slice(0, 32)}`;
}
