import { describe, expect, it } from 'vitest';
import { ConfigError } from './config.js';
import { defineServiceConfig, port } from './index.js';

const definition = defineServiceConfig({
  service: 'example',
  defaultPort: 7000,
  ownShape: { MQTT_PORT: port(7883) },
  mapOwn: (env) => ({ mqttPort: env.MQTT_PORT }),
});

function errorOf(env: Record<string, string>): ConfigError {
  try {
    definition.load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('service config', () => {
  it('defaults to the embedded stack under the data directory', () => {
    const config = definition.load({ EDGEFL_DATA_DIR: '/srv/edgefl' });
    expect(config.http).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(config.bus).toEqual({ adapter: 'embedded', path: '/srv/edgefl/bus.sqlite' });
    expect(config.schemaRegistry).toEqual({ kind: 'embedded', path: '/srv/edgefl/bus.sqlite' });
    expect(config.keys).toEqual({ kind: 'local', path: '/srv/edgefl/keyring.json' });
    expect(config.own).toEqual({ mqttPort: 7883 });
    expect(config.databaseUrl).toBeUndefined();
  });

  it('reads the distributed mode', () => {
    const config = definition.load({
      EDGEFL_BUS: 'kafka',
      KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092',
      SCHEMA_REGISTRY_URL: 'http://schema-registry:8081',
      EDGEFL_KEYS: 'vault',
      VAULT_ADDR: 'http://vault:8200',
      VAULT_TOKEN: 'root-token-value',
      DATABASE_URL: 'postgres://edgefl@postgres:5432/edgefl',
    });
    expect(config.bus).toEqual({
      adapter: 'kafka',
      brokers: ['kafka-1:9092', 'kafka-2:9092'],
      clientId: 'edgefl-example',
      ssl: false,
      dedupeStorePath: expect.stringMatching(/example-processed-events\.sqlite$/),
    });
    expect(config.schemaRegistry).toEqual({ kind: 'remote', url: 'http://schema-registry:8081' });
    expect(config.keys).toMatchObject({
      kind: 'vault',
      endpoint: 'http://vault:8200',
      token: 'root-token-value',
    });
    expect(config.secrets).toEqual(
      expect.arrayContaining(['root-token-value', 'postgres://edgefl@postgres:5432/edgefl']),
    );
  });

  it('names every bad variable and what was expected, in one line', () => {
    const error = errorOf({ PORT: '70000', LOG_LEVEL: 'loud', MQTT_PORT: 'x' });
    expect(error.message).not.toContain('\n');
    expect(error.problems).toHaveLength(3);
    expect(error.message).toMatch(/PORT must be at most 65535 \(got "70000"\)/);
    expect(error.message).toMatch(/LOG_LEVEL must be one of "fatal" \| "error" .* \(got "loud"\)/);
    expect(error.message).toMatch(/MQTT_PORT must be a number \(got "x"\)/);
  });

  it('requires the variables a mode needs', () => {
    expect(errorOf({ EDGEFL_BUS: 'kafka' }).problems).toEqual([
      expect.stringMatching(/^KAFKA_BROKERS must be set \(EDGEFL_BUS=kafka needs brokers\)/),
      expect.stringMatching(/^SCHEMA_REGISTRY_URL must be set/),
    ]);
    expect(errorOf({ EDGEFL_KEYS: 'vault', VAULT_ADDR: 'http://vault:8200' }).problems).toEqual([
      expect.stringMatching(/^VAULT_TOKEN must be set \(EDGEFL_KEYS=vault\)/),
    ]);
  });

  it('never echoes a secret value', () => {
    const error = errorOf({ DATABASE_URL: 'mysql://user:hunter22@db/x' });
    expect(error.message).toMatch(/DATABASE_URL must be a postgres/);
    expect(error.message).not.toContain('hunter22');
    expect(error.message).toContain('secret, not shown');
  });

  it('treats empty values as unset', () => {
    expect(definition.load({ PORT: '', KAFKA_BROKERS: '' }).http.port).toBe(7000);
  });
});
