// startTestService hands the bus settings of the test's environment to the service, and a fake schema registry
// in Kafka mode without SCHEMA_REGISTRY_URL.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, testBusEnv, type ServiceBootstrap } from './service-suite.js';

const saved = { ...process.env };
afterEach(() => {
  for (const name of Object.keys(process.env)) if (!(name in saved)) delete process.env[name];
  Object.assign(process.env, saved);
});

/** A service that only records the environment it was given. */
function recording(): { bootstrap: ServiceBootstrap; env: () => Record<string, string | undefined> } {
  let seen: Record<string, string | undefined> = {};
  return {
    bootstrap: async ({ env }) => {
      seen = env;
      return { url: `http://127.0.0.1:${env['PORT']}`, close: async () => undefined };
    },
    env: () => seen,
  };
}

describe('startTestService bus settings', () => {
  it('runs on the embedded bus in its data directory by default', async () => {
    delete process.env['EDGEFL_BUS'];
    delete process.env['KAFKA_BROKERS'];
    const service = recording();
    const app = await startTestService(service.bootstrap);
    expect(service.env()['EDGEFL_BUS']).toBeUndefined();
    expect(app.bus).toEqual({ adapter: 'embedded', path: `${app.dataDir}/bus.sqlite` });
    await app.stop();
  });

  it('passes EDGEFL_BUS, KAFKA_BROKERS and the Kafka settings through, with a fake Confluent registry that answers', async () => {
    process.env['EDGEFL_BUS'] = 'kafka';
    process.env['KAFKA_BROKERS'] = 'k1:9092, k2:9092';
    process.env['KAFKA_CLIENT_ID'] = 'edgefl-test';
    process.env['KAFKA_SASL_MECHANISM'] = 'scram-sha-512';
    delete process.env['SCHEMA_REGISTRY_URL'];
    const service = recording();
    const app = await startTestService(service.bootstrap, { REGISTRY_X: '1' });
    const env = service.env();
    expect(env).toMatchObject({
      EDGEFL_BUS: 'kafka',
      KAFKA_BROKERS: 'k1:9092, k2:9092',
      KAFKA_CLIENT_ID: 'edgefl-test',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      REGISTRY_X: '1',
    });
    expect(env['SCHEMA_REGISTRY_URL']).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const config = await fetch(`${env['SCHEMA_REGISTRY_URL']}/config`);
    expect(await config.json()).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect(app.bus).toEqual({
      adapter: 'kafka',
      brokers: ['k1:9092', 'k2:9092'],
      schemaRegistryUrl: env['SCHEMA_REGISTRY_URL'],
    });
    // every service of this test process shares the one fake, as services share a real registry
    const again = await testBusEnv('/unused');
    expect(again.env['SCHEMA_REGISTRY_URL']).toBe(env['SCHEMA_REGISTRY_URL']);
    await app.stop();
  });

  it('keeps a real registry named by SCHEMA_REGISTRY_URL, and lets extraEnv override the mode', async () => {
    process.env['EDGEFL_BUS'] = 'kafka';
    process.env['KAFKA_BROKERS'] = 'k1:9092';
    process.env['SCHEMA_REGISTRY_URL'] = 'http://registry.test:8081';
    expect((await testBusEnv('/data')).env['SCHEMA_REGISTRY_URL']).toBe('http://registry.test:8081');
    const embedded = await testBusEnv('/data', { EDGEFL_BUS: 'embedded' });
    expect(embedded.target).toEqual({ adapter: 'embedded', path: '/data/bus.sqlite' });
  });
});
