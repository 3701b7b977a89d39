import { describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import { SAMPLES } from '../test/samples.js';
import { ContractError } from './errors.js';
import { schemaType } from './schemas.js';
import {
  KAFKA_TOPICS,
  KAFKA_TOPIC_NAMES,
  MQTT_CHANNELS,
  kafkaKey,
  kafkaTopic,
  mqttBroadcastFilter,
  mqttBroadcastTopic,
  mqttDeviceFilter,
  mqttDeviceTopic,
  mqttReplyTopic,
  mqttTopicSchema,
  parseMqttTopic,
  type MqttChannel,
} from './topics.js';

describe('Kafka topic catalog', () => {
  it('names every topic edgefl.<domain>.<event>.v<N>, once, with the short-name lookup the bus uses', () => {
    for (const name of KAFKA_TOPIC_NAMES) expect(name).toMatch(/^edgefl\.[a-z]+\.[a-z-]+\.v\d+$/);
    expect(new Set(KAFKA_TOPIC_NAMES).size).toBe(KAFKA_TOPIC_NAMES.length);
    expect(KAFKA_TOPICS.flUpdate.name).toBe('edgefl.fl.update.v1');
    expect(KAFKA_TOPICS.deadLetter.name).toBe('edgefl.bus.deadletter.v1');
    expect(kafkaTopic('edgefl.registry.release.v1').schema).toBe('io.edgefl.registry.ReleaseEvent');
    expect(codeOf(ContractError, () => kafkaTopic('edgefl.fl.update.v2'))).toBe('UNKNOWN_TOPIC');
    expect(codeOf(ContractError, () => kafkaTopic(undefined as unknown as string))).toBe('UNKNOWN_TOPIC');
  });

  it('keys every topic by a required string field of its value schema', () => {
    for (const spec of Object.values(KAFKA_TOPICS)) {
      const field = (
        schemaType(spec.schema) as unknown as { fields: Array<{ name: string; type: { typeName: string } }> }
      ).fields.find((f) => f.name === spec.keyField);
      expect(field?.type.typeName, `${spec.name} key ${spec.keyField}`).toBe('string');
      expect(spec.partitions).toBeGreaterThan(0);
      expect(kafkaKey(spec.name, SAMPLES[spec.schema] as never)).toBe(
        (SAMPLES[spec.schema] as unknown as Record<string, string>)[spec.keyField],
      );
    }
    expect(kafkaKey('edgefl.bus.deadletter.v1', SAMPLES['io.edgefl.bus.DeadLetter'])).toBe(
      'edgefl.fl.update.v1',
    );
    expect(
      codeOf(ContractError, () =>
        kafkaKey('edgefl.fl.update.v1', { ...SAMPLES['io.edgefl.fl.FlUpdate'], roundId: '' }),
      ),
    ).toBe('INVALID_VALUE');
  });
});

describe('MQTT topics', () => {
  it('builds and parses device, reply and broadcast topics', () => {
    const topic = mqttDeviceTopic('acme', 'pos-0042', 'fl-update');
    expect(topic).toBe('edgefl/acme/pos-0042/fl-update');
    expect(parseMqttTopic(topic)).toEqual({
      scope: 'device',
      tenant: 'acme',
      deviceId: 'pos-0042',
      channel: 'fl-update',
      reply: false,
    });
    const reply = mqttReplyTopic(topic);
    expect(reply).toBe('edgefl/acme/pos-0042/fl-update/reply');
    expect(parseMqttTopic(reply)).toMatchObject({ reply: true });
    expect(mqttTopicSchema(topic)).toBe('io.edgefl.fl.FlUpdate');
    expect(mqttTopicSchema(reply)).toBe('io.edgefl.device.MessageAck');
    expect(mqttTopicSchema(mqttDeviceTopic('acme', 'phone-7', 'infer', { reply: true }))).toBe(
      'io.edgefl.inference.InferenceReply',
    );
    const broadcast = mqttBroadcastTopic('acme', 'release');
    expect(broadcast).toBe('edgefl/acme/broadcast/release');
    expect(parseMqttTopic(broadcast)).toEqual({
      scope: 'broadcast',
      tenant: 'acme',
      channel: 'release',
      reply: false,
    });
    expect(mqttTopicSchema(broadcast)).toBe('io.edgefl.registry.ReleaseManifest');
    for (const channel of Object.keys(MQTT_CHANNELS) as MqttChannel[]) {
      expect(parseMqttTopic(mqttDeviceTopic('t.1', 'd:1', channel)).channel).toBe(channel);
    }
  });

  it('rejects wildcards, empty and illegal segments when building', () => {
    for (const bad of ['', '+', '#', 'a/b', 'a+b', '$SYS', ' acme', 'acme\u0000', 'ü', 'x'.repeat(129)]) {
      expect(
        codeOf(ContractError, () => mqttDeviceTopic(bad, 'pos-1', 'telemetry')),
        JSON.stringify(bad),
      ).toBe('INVALID_VALUE');
      expect(
        codeOf(ContractError, () => mqttDeviceTopic('acme', bad, 'telemetry')),
        JSON.stringify(bad),
      ).toBe('INVALID_VALUE');
      expect(
        codeOf(ContractError, () => mqttBroadcastTopic(bad, 'release')),
        JSON.stringify(bad),
      ).toBe('INVALID_VALUE');
    }
    expect(codeOf(ContractError, () => mqttDeviceTopic('acme', 'broadcast', 'telemetry'))).toBe(
      'INVALID_VALUE',
    );
    expect(codeOf(ContractError, () => mqttDeviceTopic('acme', 'pos-1', 'gossip' as MqttChannel))).toBe(
      'UNKNOWN_TOPIC',
    );
    expect(codeOf(ContractError, () => mqttDeviceTopic('acme', 'pos-1', 'telemetry', { reply: true }))).toBe(
      'UNKNOWN_TOPIC',
    );
    expect(codeOf(ContractError, () => mqttBroadcastTopic('acme', 'telemetry'))).toBe('UNKNOWN_TOPIC');
    expect(codeOf(ContractError, () => mqttDeviceTopic(42 as unknown as string, 'pos-1', 'telemetry'))).toBe(
      'INVALID_VALUE',
    );
  });

  it('rejects topics of another shape when parsing', () => {
    for (const bad of [
      '',
      'edgefl',
      'edgefl/acme/pos-1',
      'other/acme/pos-1/telemetry',
      'edgefl//pos-1/telemetry',
      'edgefl/acme/+/telemetry',
      'edgefl/+/pos-1/telemetry',
      'edgefl/acme/pos-1/#',
      'edgefl/acme/#',
      'edgefl/acme/pos-1/telemetry/extra',
      'edgefl/acme/pos-1/fl-update/reply/more',
      '/edgefl/acme/pos-1/telemetry',
      'edgefl/acme/pos-1/telemetry/',
    ]) {
      expect(
        codeOf(ContractError, () => parseMqttTopic(bad)),
        bad,
      ).toBe('MALFORMED');
    }
    expect(codeOf(ContractError, () => parseMqttTopic('edgefl/acme/pos-1/gossip'))).toBe('UNKNOWN_TOPIC');
    expect(codeOf(ContractError, () => parseMqttTopic('edgefl/acme/pos-1/telemetry/reply'))).toBe(
      'UNKNOWN_TOPIC',
    );
    expect(codeOf(ContractError, () => parseMqttTopic('edgefl/acme/broadcast/telemetry'))).toBe(
      'UNKNOWN_TOPIC',
    );
    expect(codeOf(ContractError, () => parseMqttTopic('edgefl/acme/broadcast/release/reply'))).toBe(
      'UNKNOWN_TOPIC',
    );
    expect(codeOf(ContractError, () => parseMqttTopic(null as unknown as string))).toBe('MALFORMED');
    expect(codeOf(ContractError, () => mqttReplyTopic('edgefl/acme/broadcast/release'))).toBe(
      'UNKNOWN_TOPIC',
    );
  });

  it('builds subscription filters with + for what is left open', () => {
    expect(mqttDeviceFilter('telemetry')).toBe('edgefl/+/+/telemetry');
    expect(mqttDeviceFilter('infer', { tenant: 'acme', reply: true })).toBe('edgefl/acme/+/infer/reply');
    expect(mqttBroadcastFilter('round')).toBe('edgefl/+/broadcast/round');
    expect(codeOf(ContractError, () => mqttDeviceFilter('telemetry', { tenant: '#' }))).toBe('INVALID_VALUE');
  });
});
