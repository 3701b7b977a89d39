import { KAFKA_TOPICS } from '@edgefl/contracts';
import { describe, expect, it } from 'vitest';
import { deadLetterPublisher, decodeJsonDeadLetter, jsonDeadLetterEncoder } from './dead-letter.js';
import { DEAD_LETTER_TOPIC, type DeadLetterInfo, type OutgoingRecord, type PublishedRecord } from './port.js';

const info: DeadLetterInfo = {
  eventId: 'ev-1',
  tenant: 'acme',
  originalTopic: 'edgefl.test.update.v1',
  partition: 2,
  offset: '41',
  key: 'round-1',
  value: Buffer.from([0, 1, 2, 255]),
  headers: { tenant: 'acme', 'trace-id': 'trace-9' },
  reason: 'Error: boom',
  errorCode: 'handler_failed',
  attempts: 3,
  consumerGroup: 'agg',
  failedAt: 1_700_000_000_000,
};

describe('deadLetterPublisher', () => {
  it('publishes one dead letter keyed by the original topic, with the encoded info', async () => {
    const published: OutgoingRecord[][] = [];
    const publish = deadLetterPublisher(
      {
        publish: async (records) => {
          published.push([...records]);
          return [] as PublishedRecord[];
        },
      },
      jsonDeadLetterEncoder,
    );
    await publish(info);
    expect(published).toHaveLength(1);
    const [record] = published[0]!;
    expect(record!.topic).toBe(DEAD_LETTER_TOPIC);
    expect(record!.key).toBe(info.originalTopic);
    expect([record!.tenant, record!.traceId]).toEqual(['acme', 'trace-9']);
    expect(decodeJsonDeadLetter(Buffer.from(record!.value))).toEqual(info);
  });

  it('rejects when the publish fails, so the record stays uncommitted', async () => {
    const publish = deadLetterPublisher(
      { publish: () => Promise.reject(new Error('bus down')) },
      jsonDeadLetterEncoder,
    );
    await expect(publish(info)).rejects.toThrow('bus down');
  });
});

describe('dead-letter topic', () => {
  it('is the topic catalog’s own name', () => {
    expect(DEAD_LETTER_TOPIC).toBe(KAFKA_TOPICS.deadLetter.name);
  });
});
