// ensureTopics against the fake cluster: missing topics created with the catalog's config, an operator's override
// on an existing topic kept (reported as drift, never alterConfigs), a partition count that differs refused.
import { describe, expect, it } from 'vitest';
import { BusError } from '../port.js';
import { KafkaTopics } from './kafka-topics.js';
import { FakeKafkaCluster } from './test-support/fake-kafka.js';

const MODEL = 'edgefl.model.version.v1';

function topicsOn(cluster: FakeKafkaCluster) {
  const drift: Array<[string, string]> = [];
  const warnings: string[] = [];
  const topics = new KafkaTopics(
    cluster.client('t'),
    {},
    () => undefined,
    { topicDrift: (topic, setting) => void drift.push([topic, setting]) },
    {
      error: () => undefined,
      warn: (m) => void warnings.push(m),
      info: () => undefined,
      debug: () => undefined,
    },
  );
  return { topics, drift, warnings };
}

describe('KafkaTopics.ensureTopics', () => {
  it("creates a missing topic with the catalog's partitions and settings", async () => {
    const cluster = new FakeKafkaCluster();
    const { topics } = topicsOn(cluster);
    await topics.ensureTopics([
      { name: MODEL, partitions: 6, retentionMs: 604_800_000, cleanupPolicy: 'compact' },
    ]);
    expect(cluster.topics.get(MODEL)).toEqual({
      partitions: 6,
      config: { 'retention.ms': '604800000', 'cleanup.policy': 'compact' },
    });
  });

  it("keeps an operator's override on an existing topic across a restart, and reports the drift", async () => {
    const cluster = new FakeKafkaCluster().topic(MODEL, 6, {
      'retention.ms': '1209600000',
      'cleanup.policy': 'compact',
      'max.message.bytes': '2000000',
    });
    const { topics, drift, warnings } = topicsOn(cluster);
    await topics.ensureTopics([
      { name: MODEL, partitions: 6, retentionMs: 604_800_000, cleanupPolicy: 'compact' },
    ]);
    expect(cluster.adminCalls.filter((c) => c === 'alterConfigs' || c === 'createPartitions')).toEqual([]);
    expect(cluster.topics.get(MODEL)!.config).toEqual({
      'retention.ms': '1209600000',
      'cleanup.policy': 'compact',
      'max.message.bytes': '2000000',
    });
    expect(drift).toEqual([[MODEL, 'retention.ms']]);
    expect(warnings).toEqual([
      `topic ${MODEL}: retention.ms is 1209600000, the catalog says 604800000; kept as it is`,
    ]);
  });

  it('refuses an existing topic whose partition count differs from the catalog (more or fewer), changing nothing', async () => {
    for (const actual of [3, 12]) {
      const cluster = new FakeKafkaCluster().topic(MODEL, actual);
      const { topics } = topicsOn(cluster);
      const error = await topics.ensureTopics([{ name: MODEL, partitions: 6 }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BusError);
      expect(error).toMatchObject({ code: 'partition_count_mismatch' });
      expect((error as Error).message).toContain(
        `topic ${MODEL} has ${actual} partition(s), the catalog says 6`,
      );
      expect((error as Error).message).toContain('…v2');
      expect(cluster.adminCalls).toEqual([]);
      expect(cluster.topics.get(MODEL)!.partitions).toBe(actual);
    }
  });

  it('deletes only the topics that exist', async () => {
    const cluster = new FakeKafkaCluster().topic('contract.a.events.v1', 4);
    const { topics } = topicsOn(cluster);
    await topics.deleteTopics(['contract.a.events.v1', 'contract.gone.events.v1']);
    expect(cluster.adminCalls).toEqual(['deleteTopics contract.a.events.v1']);
    expect(cluster.topics.size).toBe(0);
  });
});
