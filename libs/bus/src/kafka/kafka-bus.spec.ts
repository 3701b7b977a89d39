import type { Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import { KafkaBus } from './kafka-bus.js';

// A stand-in for the kafkajs client, enough for subscribe() to reach the consumer: no broker needed.
function fakeKafka(connect: () => Promise<void>): Kafka {
  const admin = {
    connect: async () => undefined,
    disconnect: async () => undefined,
    listTopics: async () => ['t'],
    fetchTopicMetadata: async () => ({ topics: [{ name: 't', partitions: [{ partitionId: 0 }] }] }),
  };
  const consumer = {
    events: { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' },
    on: () => () => undefined,
    connect,
    disconnect: async () => undefined,
  };
  return { admin: () => admin, consumer: () => consumer } as unknown as Kafka;
}

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
  unhandled.length = 0;
});

describe('KafkaBus subscribe', () => {
  it('fails with a typed error and leaves no timer behind when the consumer cannot connect', async () => {
    process.on('unhandledRejection', onUnhandled);
    const bus = new KafkaBus({
      brokers: ['unused:9092'],
      clientId: 'test',
      joinTimeoutMs: 50,
      kafka: fakeKafka(() => Promise.reject(new Error('broker away'))),
    });
    await expect(
      bus.subscribe({ group: 'g', topics: ['t'], handler: () => undefined }),
    ).rejects.toMatchObject({
      code: 'unavailable',
    });
    // Past the join timeout: the abandoned join wait must neither reject unobserved nor fire at all.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(unhandled).toEqual([]);
    await bus.close();
  });
});
