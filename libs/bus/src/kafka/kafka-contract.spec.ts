// The contract suite against real Kafka: KAFKA_BROKERS when set and reachable, else testcontainers when a Docker
// engine answers, else one SKIPPED line.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { announceSkip, dockerEngineAnswers, kafkaFromEnv, tempDir } from '@edgefl/testing';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBusContractSuite } from '../contract/bus-contract-suite.js';
import type { KafkaBusOptions } from './kafka-bus.js';
import { KafkaBus } from './kafka-bus.js';

const SUITE = 'kafka contract suite';

async function findKafka(): Promise<
  { brokers: () => Promise<{ brokers: string[]; stop: () => Promise<void> }> } | { why: string }
> {
  const env = await kafkaFromEnv();
  if (env.available) return { brokers: async () => ({ brokers: env.target.brokers, stop: async () => {} }) };
  if (await dockerEngineAnswers()) {
    return {
      brokers: async () => {
        const { KafkaContainer } = await import('@testcontainers/kafka');
        const container = await new KafkaContainer('confluentinc/cp-kafka:7.6.1').withKraft().start();
        return {
          brokers: [`${container.getHost()}:${container.getMappedPort(9093)}`],
          stop: async () => void (await container.stop()),
        };
      },
    };
  }
  return { why: `${env.why}, and no Docker engine answers for testcontainers` };
}

const found = await findKafka();
if ('why' in found) announceSkip(SUITE, found.why);

runBusContractSuite(
  'kafka',
  async () => {
    if ('why' in found) throw new Error(found.why);
    const { brokers, stop } = await found.brokers();
    const dir = await tempDir('edgefl-bus-kafka-');
    // Short sessions so a SIGKILLed member is noticed quickly (the broker's minimum is 6 s by default).
    const options: KafkaBusOptions = {
      brokers,
      clientId: 'edgefl-contract',
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      dedupeStorePath: join(dir.path, 'processed.sqlite'),
      replicationFactor: 1,
    };
    return {
      open: async () => new KafkaBus(options),
      childConfig: () => ({ adapter: 'kafka', ...options }),
      deleteTopics: async (names) => {
        const bus = new KafkaBus(options);
        try {
          await bus.deleteTopics(names);
        } finally {
          await bus.close();
        }
      },
      cleanup: async () => {
        await dir.remove();
        await stop();
      },
    };
  },
  { skip: 'why' in found, timeoutMs: 90_000 },
);

// Boots never wipe topic settings: an operator's override on a catalog topic survives a restart of a service.
describe.skipIf('why' in found)('Kafka topics on a real broker', () => {
  let brokers: { brokers: string[]; stop: () => Promise<void> };
  const topic = `contract.${randomUUID().slice(0, 8)}.model.v1`;
  const spec = { name: topic, partitions: 3, retentionMs: 3_600_000, cleanupPolicy: 'delete' as const };
  const open = () =>
    new KafkaBus({ brokers: brokers.brokers, clientId: 'edgefl-contract', replicationFactor: 1 });
  beforeAll(async () => {
    if ('why' in found) return;
    brokers = await found.brokers();
  });
  afterAll(async () => {
    if (!brokers) return;
    const bus = open();
    await bus.deleteTopics([topic]).finally(() => bus.close());
    await brokers.stop();
  });

  it("keeps an operator's override across a restart, and refuses a different partition count", async () => {
    const first = open();
    await first.ensureTopics([spec]);
    await first.close();
    // The operator's change, as kafka-configs.sh --alter makes it (the whole set of overrides).
    const admin = new kafkajs.Kafka({
      clientId: 'operator',
      brokers: brokers.brokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: topic,
            configEntries: [
              { name: 'max.message.bytes', value: '2000000' },
              { name: 'retention.ms', value: '7200000' },
              { name: 'cleanup.policy', value: 'delete' },
            ],
          },
        ],
      });
      const restarted = open(); // the service boots again
      await restarted.ensureTopics([spec]);
      await expect(restarted.ensureTopics([{ ...spec, partitions: 6 }])).rejects.toMatchObject({
        code: 'partition_count_mismatch',
      });
      await restarted.close();
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: kafkajs.ConfigResourceTypes.TOPIC,
            name: topic,
            configNames: ['max.message.bytes', 'retention.ms'],
          },
        ],
      });
      const values = Object.fromEntries(
        described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]),
      );
      expect(values).toEqual({ 'max.message.bytes': '2000000', 'retention.ms': '7200000' });
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(metadata.topics[0]!.partitions).toHaveLength(3);
    } finally {
      await admin.disconnect();
    }
  });
});
