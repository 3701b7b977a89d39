import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { murmur2, PartitionChooser, partitionForKey } from './partitioner.js';

const require = createRequire(import.meta.url);
type KafkaPartitioner = (args: {
  topic: string;
  partitionMetadata: Array<{ partitionId: number; leader: number }>;
  message: { key: string };
}) => number;
const { Partitioners } = require('kafkajs') as {
  Partitioners: { DefaultPartitioner: () => KafkaPartitioner };
};

describe('partitioner', () => {
  it('matches kafkajs DefaultPartitioner (Java-compatible murmur2) for many keys and partition counts', () => {
    const kafka = Partitioners.DefaultPartitioner();
    const keys = [
      '',
      'a',
      'ab',
      'abc',
      'abcd',
      'device-0001',
      'round-42',
      'model/fraud',
      'ünïcödé-键',
      'x'.repeat(257),
    ];
    for (let i = 0; i < 200; i++) keys.push(`tenant-${i % 7}/device-${(i * 7919) % 100_003}`);
    for (const partitions of [1, 2, 3, 6, 12, 50]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 0,
      }));
      for (const key of keys) {
        expect(partitionForKey(key, partitions)).toBe(
          kafka({ topic: 't', partitionMetadata, message: { key } }),
        );
      }
    }
  });

  it('gives the Java client reference hashes', () => {
    // Values from Apache Kafka's UtilsTest.testMurmur2.
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
  });

  it('places keyed records by key and unkeyed ones round-robin per topic', () => {
    const chooser = new PartitionChooser();
    for (const key of ['device-1', 'round-7', '']) {
      expect(chooser.partitionOf('t', key, 6)).toBe(partitionForKey(key, 6));
    }
    const a = Array.from({ length: 8 }, () => chooser.partitionOf('a', null, 4));
    const b = Array.from({ length: 3 }, () => chooser.partitionOf('b', null, 3));
    // Each topic cycles through all its partitions in order from wherever it started.
    for (let i = 1; i < a.length; i++) expect(a[i]).toBe((a[i - 1]! + 1) % 4);
    expect(new Set(a.slice(0, 4))).toEqual(new Set([0, 1, 2, 3]));
    expect(new Set(b)).toEqual(new Set([0, 1, 2]));
    // Keyed records in between do not move a topic's round-robin position.
    chooser.partitionOf('a', 'k', 4);
    expect(chooser.partitionOf('a', null, 4)).toBe((a[7]! + 1) % 4);
  });
});
