import { join } from 'node:path';
import { eventually, tempDir } from '@edgefl/testing';
import avro from 'avsc';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { EmbeddedBus } from '../embedded/embedded-bus.js';
import { DEAD_LETTER_TOPIC } from '../port.js';
import { codecDeadLetterEncoder, TypedBus, type DeadLetterValue, type ValueCodec } from './typed-bus.js';

// A stand-in for libs/contracts' TopicCodec: Confluent wire format (0, schema id, Avro body) with avsc.
interface Update {
  eventId: string;
  roundId: string;
  n: number;
}
type Catalog = { 'edgefl.test.update.v1': Update; [DEAD_LETTER_TOPIC]: DeadLetterValue };
const types = {
  'edgefl.test.update.v1': avro.Type.forSchema({
    type: 'record',
    name: 'Update',
    fields: [
      { name: 'eventId', type: 'string' },
      { name: 'roundId', type: 'string' },
      { name: 'n', type: 'int' },
    ],
  }),
  [DEAD_LETTER_TOPIC]: avro.Type.forSchema({
    type: 'record',
    name: 'DeadLetter',
    fields: [
      { name: 'eventId', type: 'string' },
      { name: 'tenant', type: ['null', 'string'] },
      { name: 'originalTopic', type: 'string' },
      { name: 'partition', type: 'int' },
      { name: 'offset', type: 'string' },
      { name: 'key', type: ['null', 'bytes'] },
      { name: 'value', type: 'bytes' },
      { name: 'headers', type: { type: 'map', values: 'string' } },
      { name: 'reason', type: 'string' },
      { name: 'errorCode', type: 'string' },
      { name: 'attempts', type: 'int' },
      { name: 'consumerGroup', type: 'string' },
      { name: 'failedAt', type: 'long' },
    ],
  }),
};
class CodecError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
const codec: ValueCodec<Catalog> = {
  async encode(topic, value) {
    const header = Buffer.from([0, 0, 0, 0, topic === DEAD_LETTER_TOPIC ? 2 : 1]);
    return Buffer.concat([header, types[topic].toBuffer(value)]);
  },
  async decode(topic, bytes) {
    const b = Buffer.from(bytes);
    if (b.length < 5 || b[0] !== 0) throw new CodecError('BAD_MAGIC', 'not the wire format');
    try {
      return types[topic].fromBuffer(b.subarray(5)) as never;
    } catch (error) {
      throw new CodecError('MALFORMED', (error as Error).message);
    }
  },
};

let dir: { path: string; remove: () => Promise<void> };
let bus: EmbeddedBus;
let typed: TypedBus<Catalog>;
beforeEach(async () => {
  dir = await tempDir('edgefl-typed-');
  bus = new EmbeddedBus({
    path: join(dir.path, 'bus.sqlite'),
    pollIntervalMs: 20,
    deadLetterEncoder: codecDeadLetterEncoder(codec),
  });
  typed = new TypedBus(bus, codec, { keyOf: (_topic, value) => (value as Update).roundId });
});
afterEach(async () => {
  await bus.close();
  await dir.remove();
});

const deadLetters = async (count: number) => {
  const letters: DeadLetterValue[] = [];
  const sub = await typed.subscribe({
    group: 'dlq-reader',
    topics: [DEAD_LETTER_TOPIC],
    fromBeginning: true,
    handler: (r) => void letters.push(r.value),
  });
  await eventually(`${count} dead letter(s)`, () => letters.length >= count, 10_000);
  await sub.close();
  return letters;
};

it('round-trips typed values with the key and event id taken from the value', async () => {
  const eventId = '2b0e3c1e-8a7f-4c55-9d8e-1f2a3b4c5d6e';
  const [placed] = await typed.publish('edgefl.test.update.v1', [
    { value: { eventId, roundId: 'round-1', n: 7 } },
  ]);
  expect(placed!.eventId).toBe(eventId);
  const got: Update[] = [];
  const sub = await typed.subscribe({
    group: 'agg',
    topics: ['edgefl.test.update.v1'],
    fromBeginning: true,
    handler: (r) => {
      expect(r.key).toBe('round-1');
      expect(r.raw[0]).toBe(0);
      got.push(r.value);
    },
  });
  await eventually('the value', () => got.length === 1, 10_000);
  await sub.close();
  expect(got).toEqual([{ eventId, roundId: 'round-1', n: 7 }]);
});

it('dead-letters an undecodable record at once (no retries) with the original bytes, and keeps consuming', async () => {
  let calls = 0;
  const good: number[] = [];
  const sub = await typed.subscribe({
    group: 'agg',
    topics: ['edgefl.test.update.v1'],
    fromBeginning: true,
    maxAttempts: 5,
    handler: (r) => {
      calls++;
      good.push(r.value.n);
    },
  });
  await bus.publish([
    {
      topic: 'edgefl.test.update.v1',
      key: 'round-1',
      value: Buffer.from('garbage!'),
      eventId: 'not-a-uuid',
      tenant: 'acme',
    },
  ]);
  await typed.publish('edgefl.test.update.v1', [
    { value: { eventId: '3b0e3c1e-8a7f-4c55-9d8e-1f2a3b4c5d6e', roundId: 'round-1', n: 2 } },
  ]);
  await eventually('the good record after the bad one', () => good.includes(2), 10_000);
  await sub.close();
  expect(calls).toBe(1);
  const [letter] = await deadLetters(1);
  expect(letter).toMatchObject({
    errorCode: 'BAD_MAGIC',
    attempts: 1,
    originalTopic: 'edgefl.test.update.v1',
    consumerGroup: 'agg',
    tenant: 'acme',
  });
  expect(letter!.value.toString()).toBe('garbage!');
  expect(letter!.key?.toString()).toBe('round-1');
  expect(letter!.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

it('dead-letters a record whose handler keeps throwing after maxAttempts', async () => {
  const sub = await typed.subscribe({
    group: 'agg',
    topics: ['edgefl.test.update.v1'],
    fromBeginning: true,
    maxAttempts: 2,
    backoff: { initialMs: 1, maxMs: 1, factor: 1 },
    handler: () => {
      throw new Error('aggregator refused');
    },
  });
  await typed.publish('edgefl.test.update.v1', [
    { value: { eventId: '4b0e3c1e-8a7f-4c55-9d8e-1f2a3b4c5d6e', roundId: 'r', n: 1 } },
  ]);
  const [letter] = await deadLetters(1);
  await sub.close();
  expect(letter).toMatchObject({
    errorCode: 'handler_failed',
    attempts: 2,
    eventId: '4b0e3c1e-8a7f-4c55-9d8e-1f2a3b4c5d6e',
  });
  expect(letter!.reason).toContain('aggregator refused');
});

it('rejects an invalid value before anything is written', async () => {
  await expect(
    typed.publish('edgefl.test.update.v1', [{ value: { eventId: 'x', roundId: 'r', n: 'nope' as never } }]),
  ).rejects.toThrow();
  expect(await bus.consumerLag('nobody', ['edgefl.test.update.v1'])).toEqual([]);
});

it('subscribeBatch hands decoded records of a batch together and the undecodable ones apart (none dead-lettered)', async () => {
  await typed.publish('edgefl.test.update.v1', [
    { value: { eventId: 'a', roundId: 'r', n: 1 } },
    { value: { eventId: 'b', roundId: 'r', n: 2 } },
  ]);
  await bus.publish([{ topic: 'edgefl.test.update.v1', key: 'r', value: Buffer.from('junk') }]);
  await typed.publish('edgefl.test.update.v1', [{ value: { eventId: 'c', roundId: 'r', n: 3 } }]);
  const batches: Array<{ ns: number[]; bad: string[] }> = [];
  const sub = await typed.subscribeBatch({
    group: 'batcher',
    topics: ['edgefl.test.update.v1'],
    fromBeginning: true,
    handler: (records, undecodable) => {
      batches.push({ ns: records.map((r) => r.value.n), bad: undecodable.map((u) => u.code) });
    },
  });
  await eventually(
    'all four records',
    () => batches.flatMap((b) => [...b.ns, ...b.bad]).length === 4,
    10_000,
  );
  await sub.close();
  // one partition (one key), published before the subscription: one fetch, one batch
  expect(batches).toEqual([{ ns: [1, 2, 3], bad: ['BAD_MAGIC'] }]);
  const dead = await bus.consumerLag('batcher', [DEAD_LETTER_TOPIC]).catch(() => []);
  expect(dead.every((p) => p.lag === 0)).toBe(true);
});
