import { Inject, Injectable } from '@nestjs/common';
import {
  KAFKA_TOPICS,
  SingleObjectCodec,
  mqttDeviceTopic,
  type InferenceReply,
  type MqttChannel,
  type RecordName,
  type RecordTypes,
  type RoundEvent,
  type SecAggMessage,
} from '@edgefl/contracts';
import { OnEvent, type KafkaTopicValues, type TypedRecord } from '@edgefl/bus';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { isTopicSegment } from '../authz/acl.js';
import { GatewayMetrics } from '../metrics/gateway-metrics.js';
import { DEVICE_SENDER } from '../tokens.js';
import type { DeviceSender } from '../uplink/device-sender.js';

const OPENED = 'io.edgefl.fl.RoundOpened';
/** Rounds whose selected devices are remembered for their close/result messages (oldest forgotten first). */
const REMEMBERED_ROUNDS = 10_000;
/** One consumer group for all replicas: a message published by any replica reaches its device on any replica. */
const GROUP = 'gateway-downlink';

/**
 * The down-bridge to exactly the devices a message is for: round invitations to the round's selected devices (and
 * its close/result to the same devices), the aggregator's secure-aggregation messages to the participants they
 * name (or to the one recipient a request names), and the cloud tier's inference replies to the device that asked, on `…/infer/reply`, by correlation id.
 */
@Injectable()
export class DownlinkService {
  private readonly codec = new SingleObjectCodec();
  private readonly rounds = new Map<string, { tenant: string; devices: readonly string[] }>();

  constructor(
    @Inject(DEVICE_SENDER) private readonly sender: DeviceSender,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {}

  @OnEvent(KAFKA_TOPICS.flRound.name, { group: GROUP, maxAttempts: 5 })
  async onRound(record: TypedRecord<KafkaTopicValues, 'edgefl.fl.round.v1'>): Promise<void> {
    const round: RoundEvent = record.value;
    let devices: readonly string[];
    if (OPENED in round.event) {
      devices = round.event[OPENED].selectedDevices;
      this.rounds.set(round.roundId, { tenant: round.tenant, devices });
      if (this.rounds.size > REMEMBERED_ROUNDS) this.rounds.delete(this.rounds.keys().next().value!);
    } else {
      devices = this.rounds.get(round.roundId)?.devices ?? [];
    }
    await this.fanOut(round.tenant, devices, 'round', 'io.edgefl.fl.RoundEvent', round);
  }

  @OnEvent(KAFKA_TOPICS.flSecAgg.name, { group: GROUP, maxAttempts: 5 })
  async onSecAgg(record: TypedRecord<KafkaTopicValues, 'edgefl.fl.secagg.v1'>): Promise<void> {
    const message: SecAggMessage = record.value;
    if (message.senderDeviceId !== null) return; // a device's own message, bridged up by a gateway
    // a request addressed to one device goes to it alone (its neighbours' keys and shares are for it only);
    // messages without a recipient (written before the field existed) fan out to the participants they name
    const to = message.recipientDeviceId !== null ? [message.recipientDeviceId] : message.participants;
    await this.fanOut(message.tenant, to, 'secagg', 'io.edgefl.fl.SecAggMessage', message);
  }

  @OnEvent(KAFKA_TOPICS.inferenceReply.name, { group: GROUP, maxAttempts: 5 })
  async onInferenceReply(record: TypedRecord<KafkaTopicValues, 'edgefl.inference.reply.v1'>): Promise<void> {
    const reply: InferenceReply = record.value;
    if (reply.deviceId === null) return; // answered a direct API caller
    if (!isTopicSegment(reply.deviceId) || !isTopicSegment(reply.tenant)) return this.unroutable('infer');
    await this.sender.send(
      mqttDeviceTopic(reply.tenant, reply.deviceId, 'infer', { reply: true }),
      this.codec.encode('io.edgefl.inference.InferenceReply', reply),
      { qos: 1 },
    );
    this.metrics.messagesOut.inc({ channel: 'infer' });
  }

  private async fanOut<N extends RecordName>(
    tenant: string,
    devices: readonly string[],
    channel: MqttChannel,
    schema: N,
    value: RecordTypes[N],
  ): Promise<void> {
    if (devices.length === 0) return;
    if (!isTopicSegment(tenant)) return this.unroutable(channel);
    const payload = this.codec.encode(schema, value);
    // a send that fails throws: the bus retries the record (devices dedupe by eventId)
    await Promise.all(
      devices.map(async (deviceId) => {
        if (!isTopicSegment(deviceId) || deviceId === 'broadcast') return this.unroutable(channel);
        await this.sender.send(mqttDeviceTopic(tenant, deviceId, channel), payload, { qos: 1 });
        this.metrics.messagesOut.inc({ channel });
      }),
    );
  }

  private unroutable(channel: MqttChannel): void {
    this.metrics.refused.inc({ stage: 'downlink', reason: 'unroutable_device' });
    this.logger.warn({ channel }, 'a down message names a tenant or device that is no MQTT topic segment');
  }
}
