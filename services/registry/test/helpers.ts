import { Ed25519SigningKey } from '@edgefl/keys';
import {
  announceSkip,
  freePort,
  httpClient,
  LogSink,
  postgresFromEnv,
  startTestService,
  testBusEnv,
  type TestBusTarget,
} from '@edgefl/testing';
import { openCatalogBus } from '@edgefl/bus';
import pg from 'pg';
import { SignJWT } from 'jose';
import { createPrivateKey, randomUUID } from 'node:crypto';
import { bootstrap } from '../src/main.js';

export type TestRegistry = Awaited<ReturnType<typeof startTestService>>;

/** The management API token every test registry is started with (unless a test sets REGISTRY_ADMIN_TOKEN). */
export const ADMIN_TOKEN = `test-admin-${randomUUID()}`;
/** Headers carrying the admin token, for raw fetch calls to management routes. */
export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` } as const;

/** Starts the registry with its own defaults (device auth required) on a free port with a private data dir. */
export function startSecureRegistry(env: Record<string, string> = {}): Promise<TestRegistry> {
  return startTestService(bootstrap, { REGISTRY_ADMIN_TOKEN: ADMIN_TOKEN, ...env });
}

/**
 * Device auth is `required` by default; suites that do not exercise it opt out explicitly (as an operator would),
 * so their manifest and download calls need no device token. `env` adds or overrides variables.
 */
const TOKENLESS = { REGISTRY_DEVICE_AUTH: 'off' } as const;

/** Starts the registry (device auth off, see TOKENLESS) on a free port with a private data dir. */
export function startRegistry(env: Record<string, string> = {}): Promise<TestRegistry> {
  return startSecureRegistry({ ...TOKENLESS, ...env });
}

/**
 * A JSON request with the admin token (a call that passes its own `authorization` replaces it; an empty one sends
 * none); the answer's body parsed when it is JSON.
 */
export const call = httpClient(admin);

/** A device identity and a fresh assertion signed with it. */
export function deviceIdentity() {
  const key = Ed25519SigningKey.generate();
  const pem = key.exportPem();
  return {
    key,
    publicKeyBase64: Buffer.from(key.publicKey).toString('base64'),
    async assertion(
      deviceId: string,
      overrides: { aud?: string; sub?: string; expSeconds?: number; jti?: string } = {},
    ) {
      return new SignJWT({})
        .setProtectedHeader({ alg: 'EdDSA' })
        .setSubject(overrides.sub ?? deviceId)
        .setAudience(overrides.aud ?? 'edgefl-registry')
        .setIssuedAt()
        .setExpirationTime(`${overrides.expSeconds ?? 60}s`)
        .setJti(overrides.jti ?? randomUUID())
        .sign(createPrivateKey(pem));
    },
  };
}

/** Starts the registry on a data directory the caller owns (to stop it and start another on the same data). */
export async function startRegistryAt(dataDir: string, env: Record<string, string> = {}) {
  const logs = new LogSink();
  const bus = await testBusEnv(dataDir, env);
  const service = await bootstrap({
    env: {
      PATH: process.env['PATH'],
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      EDGEFL_DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      REGISTRY_ADMIN_TOKEN: ADMIN_TOKEN,
      ...TOKENLESS,
      ...bus.env,
      ...env,
    },
    shutdownHooks: false,
    logDestination: logs,
  });
  return { url: service.url, logs, bus: bus.target, stop: () => service.close() };
}

/** A client of the bus a test registry runs on (its bus file, or its Kafka cluster and schema registry). */
export function busClientOf(target: TestBusTarget) {
  return openCatalogBus(target, 'edgefl-registry-test');
}

/** The metadata engines every e2e suite runs against: SQLite always, PostgreSQL when reachable (skipped loudly). */
export const ENGINES = ['sqlite', 'postgres'] as const;
export type Engine = (typeof ENGINES)[number];

const postgres = await postgresFromEnv();
if (!postgres.available) announceSkip('postgres registry e2e suites', postgres.why);

export const engineAvailable = (engine: Engine) => engine === 'sqlite' || postgres.available;

/** Environment selecting the engine: nothing for SQLite; DATABASE_URL of a fresh database for PostgreSQL. */
export async function engineEnv(
  engine: Engine,
): Promise<{ env: Record<string, string>; cleanup: () => Promise<void> }> {
  if (engine === 'sqlite' || !postgres.available) return { env: {}, cleanup: async () => undefined };
  const admin = postgres.target.url;
  const name = `registry_e2e_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    cleanup: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Has one device of `modelId` install what the release offers it (stages advance only on installs): registers
 * `deviceId` to the tenant and model when it is new, reads its manifest (which assigns it to the stage) and reports
 * ACTIVE.
 */
export async function installOn(
  url: string,
  release: { id: string; tenant: string; modelId: string },
  deviceId: string,
): Promise<void> {
  const registered = await call(url, 'POST', `/v1/tenants/${release.tenant}/devices`, {
    id: deviceId,
    publicKey: deviceIdentity().publicKeyBase64,
    modelId: release.modelId,
  });
  if (registered.status !== 201 && registered.status !== 409)
    throw new Error(`registering ${deviceId}: ${registered.status}`);
  const manifest = await call<{ version: number; reason: string; releaseId: string | null }>(
    url,
    'GET',
    `/v1/devices/${deviceId}/manifest`,
  );
  if (manifest.body.reason !== 'rollout' || manifest.body.releaseId !== release.id)
    throw new Error(`${deviceId} is not in the current stage of ${release.id}`);
  const reported = await call(url, 'POST', `/v1/devices/${deviceId}/ota-status`, {
    modelId: release.modelId,
    releaseId: release.id,
    toVersion: manifest.body.version,
    state: 'ACTIVE',
  });
  if (reported.status !== 202) throw new Error(`reporting ${deviceId}: ${reported.status}`);
}
