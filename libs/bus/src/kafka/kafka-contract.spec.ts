// The contract suite against real Kafka: KAFKA_BROKERS when set and reachable, else testcontainers when a Docker
// engine answers, else one SKIPPED line.
import { join } from 'node:path';
import { announceSkip, dockerEngineAnswers, kafkaFromEnv, tempDir } from '@edgefl/testing';
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
      cleanup: async () => {
        await dir.remove();
        await stop();
      },
    };
  },
  { skip: 'why' in found, timeoutMs: 90_000 },
);
