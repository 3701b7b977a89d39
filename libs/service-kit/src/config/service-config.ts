import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { csv, loadConfig, positiveInt, secret, secretValues, type EnvSchema } from './config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type BusConfig =
  | { adapter: 'embedded'; path: string }
  | {
      adapter: 'kafka';
      brokers: string[];
      clientId: string;
      ssl: boolean;
      /** SQLite file remembering processed event ids (consumer-side dedupe) for this service. */
      dedupeStorePath: string;
      sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
    };

export type SchemaRegistryConfig = { kind: 'embedded'; path: string } | { kind: 'remote'; url: string };

export type KeysConfig =
  | { kind: 'local'; path: string }
  | { kind: 'vault'; endpoint: string; token: string; transitMount: string; kvMount: string };

/** What every service is configured with: the mode of each adapter (DESIGN.md §3) and its own HTTP listener. */
export interface BaseConfig {
  service: string;
  http: { host: string; port: number };
  log: { level: LogLevel };
  dataDir: string;
  bus: BusConfig;
  schemaRegistry: SchemaRegistryConfig;
  keys: KeysConfig;
  /** PostgreSQL for metadata when set; otherwise SQLite files under dataDir. */
  databaseUrl?: string;
  shutdownTimeoutMs: number;
  /** Values never to be printed (scrubbed from logs). */
  secrets: string[];
}

/** The variables every service reads. Each service adds its own with `defineServiceConfig`. */
export function baseEnvShape(defaultPort: number) {
  return {
    HOST: z.string().min(1).default('127.0.0.1'),
    /** 0 = a free port, chosen when the service listens (its URL then names the real one). */
    PORT: z.coerce.number().int().min(0).max(65_535).default(defaultPort),
    LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
    EDGEFL_DATA_DIR: z.string().min(1).default('.edgefl'),
    EDGEFL_BUS: z.enum(['embedded', 'kafka']).default('embedded'),
    EDGEFL_BUS_PATH: z.string().min(1).optional(),
    KAFKA_BROKERS: csv.optional(),
    KAFKA_CLIENT_ID: z.string().min(1).optional(),
    KAFKA_SSL: z.stringbool().default(false),
    KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
    KAFKA_SASL_USERNAME: z.string().min(1).optional(),
    KAFKA_SASL_PASSWORD: secret(z.string().min(1).optional()),
    SCHEMA_REGISTRY_URL: z.url().optional(),
    EDGEFL_KEYS: z.enum(['local', 'vault']).default('local'),
    EDGEFL_KEYRING_PATH: z.string().min(1).optional(),
    VAULT_ADDR: z.url().optional(),
    VAULT_TOKEN: secret(z.string().min(1).optional()),
    VAULT_TRANSIT_MOUNT: z.string().min(1).default('transit'),
    VAULT_KV_MOUNT: z.string().min(1).default('secret'),
    DATABASE_URL: secret(
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL')
        .optional(),
    ),
    SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
  };
}

type BaseShape = ReturnType<typeof baseEnvShape>;
type BaseEnv = z.output<z.ZodObject<BaseShape>>;

function requireWhen(ctx: z.RefinementCtx, env: object, condition: boolean, names: string[], why: string) {
  if (!condition) return;
  for (const name of names) {
    if ((env as Record<string, unknown>)[name] === undefined)
      ctx.addIssue({ code: 'custom', path: [name], message: `set (${why})` });
  }
}

function toBaseConfig(service: string, env: BaseEnv, secrets: string[]): BaseConfig {
  const dataDir = resolve(env.EDGEFL_DATA_DIR);
  const inData = (path: string | undefined, fallback: string) =>
    path === undefined ? join(dataDir, fallback) : isAbsolute(path) ? path : resolve(path);
  const busPath = inData(env.EDGEFL_BUS_PATH, 'bus.sqlite');
  const bus: BusConfig =
    env.EDGEFL_BUS === 'embedded'
      ? { adapter: 'embedded', path: busPath }
      : {
          adapter: 'kafka',
          brokers: env.KAFKA_BROKERS ?? [],
          clientId: env.KAFKA_CLIENT_ID ?? `edgefl-${service}`,
          ssl: env.KAFKA_SSL,
          dedupeStorePath: join(dataDir, `${service}-processed-events.sqlite`),
          ...(env.KAFKA_SASL_MECHANISM && env.KAFKA_SASL_USERNAME && env.KAFKA_SASL_PASSWORD
            ? {
                sasl: {
                  mechanism: env.KAFKA_SASL_MECHANISM,
                  username: env.KAFKA_SASL_USERNAME,
                  password: env.KAFKA_SASL_PASSWORD,
                },
              }
            : {}),
        };
  return {
    service,
    http: { host: env.HOST, port: env.PORT },
    log: { level: env.LOG_LEVEL },
    dataDir,
    bus,
    schemaRegistry: env.SCHEMA_REGISTRY_URL
      ? { kind: 'remote', url: env.SCHEMA_REGISTRY_URL }
      : { kind: 'embedded', path: busPath },
    keys:
      env.EDGEFL_KEYS === 'local'
        ? { kind: 'local', path: inData(env.EDGEFL_KEYRING_PATH, 'keyring.json') }
        : {
            kind: 'vault',
            endpoint: env.VAULT_ADDR ?? '',
            token: env.VAULT_TOKEN ?? '',
            transitMount: env.VAULT_TRANSIT_MOUNT,
            kvMount: env.VAULT_KV_MOUNT,
          },
    ...(env.DATABASE_URL ? { databaseUrl: env.DATABASE_URL } : {}),
    shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
    secrets,
  };
}

export interface ServiceConfigDefinition<Own> {
  service: string;
  /** The full environment schema (base + the service's own variables), e.g. for checking a compose file. */
  schema: EnvSchema;
  load(env?: Record<string, string | undefined>): BaseConfig & { own: Own };
}

/**
 * One typed config per service, validated at boot (DESIGN.md §7). `ownShape` declares the service's own
 * variables; `mapOwn` turns them into the service's typed settings, found under `config.own`.
 */
export function defineServiceConfig<OwnShape extends Record<string, z.ZodType>, Own>(options: {
  service: string;
  defaultPort: number;
  ownShape: OwnShape;
  mapOwn: (env: z.output<z.ZodObject<OwnShape>>, base: BaseConfig) => Own;
}): ServiceConfigDefinition<Own> {
  const object = z.object({ ...baseEnvShape(options.defaultPort), ...options.ownShape });
  const schema = object.superRefine((raw, ctx) => {
    const env = raw as unknown as BaseEnv;
    requireWhen(ctx, env, env.EDGEFL_BUS === 'kafka', ['KAFKA_BROKERS'], 'EDGEFL_BUS=kafka needs brokers');
    requireWhen(
      ctx,
      env,
      env.EDGEFL_BUS === 'kafka',
      ['SCHEMA_REGISTRY_URL'],
      'EDGEFL_BUS=kafka needs a shared Confluent-compatible schema registry',
    );
    requireWhen(ctx, env, env.EDGEFL_KEYS === 'vault', ['VAULT_ADDR', 'VAULT_TOKEN'], 'EDGEFL_KEYS=vault');
    if (env.KAFKA_SASL_MECHANISM !== undefined) {
      requireWhen(
        ctx,
        env,
        true,
        ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'],
        'KAFKA_SASL_MECHANISM is set',
      );
    }
  });
  return {
    service: options.service,
    schema: object as unknown as EnvSchema,
    load(env = process.env) {
      const parsed = loadConfig(options.service, schema, env) as BaseEnv & z.output<z.ZodObject<OwnShape>>;
      const base = toBaseConfig(options.service, parsed, secretValues(object as unknown as EnvSchema, env));
      return { ...base, own: options.mapOwn(parsed, base) };
    },
  };
}
