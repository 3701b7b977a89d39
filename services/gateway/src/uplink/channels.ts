// The up channels of the MQTT catalog and where each goes on the bus: its Kafka topic, and the payload fields that
// name the tenant and the device (a device cannot speak for another).
import { KAFKA_TOPICS, MQTT_CHANNELS, type KafkaTopicName, type MqttChannel } from '@edgefl/contracts';
import type { RecordName } from '@edgefl/contracts';

export interface UpRoute {
  channel: MqttChannel;
  /** Schema of the MQTT payload (single-object encoding). */
  schema: RecordName;
  topic: KafkaTopicName;
  /** Field of the value naming the sending device. */
  deviceField: 'deviceId' | 'senderDeviceId';
  /** Field whose value answers the message in a MessageAck/InferenceReply (the device matches replies on it). */
  correlationField: 'eventId' | 'updateId' | 'correlationId';
}

const route = (
  channel: MqttChannel,
  topic: KafkaTopicName,
  deviceField: UpRoute['deviceField'] = 'deviceId',
  correlationField: UpRoute['correlationField'] = 'eventId',
): UpRoute => ({ channel, schema: MQTT_CHANNELS[channel].schema, topic, deviceField, correlationField });

/** Every channel a device publishes on, by name. */
export const UP_ROUTES: Partial<Record<MqttChannel, UpRoute>> = {
  telemetry: route('telemetry', KAFKA_TOPICS.deviceTelemetry.name),
  presence: route('presence', KAFKA_TOPICS.devicePresence.name),
  inference: route('inference', KAFKA_TOPICS.inferenceLog.name),
  infer: route('infer', KAFKA_TOPICS.inferenceRequest.name, 'deviceId', 'correlationId'),
  'fl-update': route('fl-update', KAFKA_TOPICS.flUpdate.name, 'deviceId', 'updateId'),
  secagg: route('secagg', KAFKA_TOPICS.flSecAgg.name, 'senderDeviceId'),
  'ota-status': route('ota-status', KAFKA_TOPICS.otaStatus.name),
};
