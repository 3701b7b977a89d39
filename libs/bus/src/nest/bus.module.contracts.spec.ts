import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { EmbeddedSchemaRegistry, TopicCodec, type DeadLetter, type DevicePresence } from '@edgefl/contracts';
import { eventually, tempDir } from '@edgefl/testing';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { DEAD_LETTER_TOPIC, type EventBus } from '../port.js';
import type { KafkaTopicValues } from '../typed/contracts.js';
import type { TypedBus, TypedRecord } from '../typed/typed-bus.js';
import { OnEvent } from './on-event.decorator.js';
import { BusModule } from './bus.module.js';
import { EVENT_BUS, TYPED_BUS } from './tokens.js';

const PRESENCE = 'edgefl.device.presence.v1';
const seen: DevicePresence[] = [];
const letters: DeadLetter[] = [];

@Injectable()
class PresenceConsumer {
  @OnEvent(PRESENCE, { group: 'telemetry', fromBeginning: true })
  onPresence(record: TypedRecord<KafkaTopicValues, typeof PRESENCE>): void {
    expect(record.key).toBe(record.value.deviceId);
    seen.push(record.value);
  }

  @OnEvent(DEAD_LETTER_TOPIC, { group: 'dlq-watch', fromBeginning: true })
  onDeadLetter(record: TypedRecord<KafkaTopicValues, typeof DEAD_LETTER_TOPIC>): void {
    letters.push(record.value);
  }
}

let dir: { path: string; remove: () => Promise<void> };
beforeEach(async () => {
  dir = await tempDir('edgefl-bus-contracts-');
});
afterEach(() => dir.remove());

it('wires libs/contracts: catalog topics, wire-format values, catalog keys, Avro dead letters for undecodable bytes', async () => {
  const path = join(dir.path, 'bus.sqlite');
  const moduleRef = await Test.createTestingModule({
    imports: [
      BusModule.forRoot({
        bus: { adapter: 'embedded', path, pollIntervalMs: 20 },
        schemaRegistry: { kind: 'embedded' },
        topics: 'catalog',
      }),
    ],
    providers: [PresenceConsumer],
  }).compile();
  const app = moduleRef.createNestApplication({ logger: false });
  await app.init();
  const typed = app.get<TypedBus<KafkaTopicValues>>(TYPED_BUS);
  const bus = app.get<EventBus>(EVENT_BUS);
  const value: DevicePresence = {
    eventId: randomUUID(),
    tenant: 'acme',
    deviceId: 'dev-1',
    status: 'ONLINE',
    reason: 'CONNECTED',
    timestamp: Date.now(),
  };
  const [placed] = await typed.publish(PRESENCE, [{ value }]);
  expect(placed!.eventId).toBe(value.eventId);
  expect((await bus.consumerLag('nobody', [PRESENCE])).length).toBe(12); // the catalog's partition count
  await bus.publish([{ topic: PRESENCE, key: 'dev-2', value: Buffer.from('not avro'), tenant: 'acme' }]);
  await eventually(
    'the presence event and the dead letter',
    () => seen.length === 1 && letters.length === 1,
    10_000,
  );
  await app.close();
  expect(seen[0]).toEqual(value);
  expect(letters[0]).toMatchObject({
    originalTopic: PRESENCE,
    consumerGroup: 'telemetry',
    errorCode: 'BAD_MAGIC',
    attempts: 1,
    tenant: 'acme',
  });
  expect(Buffer.from(letters[0]!.value).toString()).toBe('not avro');

  // The dead letter on the bus is in the Confluent wire format, readable by any consumer with the registry.
  const registry = new EmbeddedSchemaRegistry(path);
  const codec = new TopicCodec(registry);
  const raw = new (await import('../embedded/embedded-bus.js')).EmbeddedBus({ path });
  const bytes: Buffer[] = [];
  const sub = await raw.subscribe({
    group: 'inspect',
    topics: [DEAD_LETTER_TOPIC],
    fromBeginning: true,
    handler: (r) => void bytes.push(r.value),
  });
  await eventually('raw dead letter', () => bytes.length === 1, 10_000);
  await sub.close();
  await raw.close();
  expect(bytes[0]![0]).toBe(0);
  expect((await codec.decode(DEAD_LETTER_TOPIC, bytes[0]!)).errorCode).toBe('BAD_MAGIC');
  await registry.close();
});
