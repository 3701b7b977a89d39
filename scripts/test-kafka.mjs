#!/usr/bin/env node
// npm run test:kafka: the whole Vitest suite in Kafka mode (EDGEFL_BUS=kafka) against the brokers in KAFKA_BROKERS.
// Service suites run their services on Kafka (with a fake Confluent schema registry in process unless
// SCHEMA_REGISTRY_URL points at a real one); test files run one at a time, because services' consumer groups are
// fixed names and two copies of a service in one group would split its partitions. Extra arguments go to vitest.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (!process.env.KAFKA_BROKERS) {
  console.error(
    'npm run test:kafka needs KAFKA_BROKERS (comma-separated host:port of a Kafka cluster), e.g. KAFKA_BROKERS=127.0.0.1:9092 npm run test:kafka',
  );
  process.exit(2);
}
const result = spawnSync('npx', ['vitest', 'run', '--no-file-parallelism', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, EDGEFL_BUS: 'kafka' },
});
process.exit(result.status ?? 1);
