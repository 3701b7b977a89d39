import { request } from 'node:http';
import { connect } from 'node:net';

/** Where an external engine can be reached, or why it cannot. */
export type EngineTarget<T> = { available: true; target: T; via: string } | { available: false; why: string };

/** True when a TCP connection to host:port opens within the timeout. */
export function tcpReachable(host: string, port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * True when a Docker engine answers `GET /_ping` (DOCKER_HOST as unix:// or tcp://, else the default socket).
 * The docker CLI alone is not enough: testcontainers needs an engine.
 */
export function dockerEngineAnswers(timeoutMs = 1_500): Promise<boolean> {
  const host = process.env['DOCKER_HOST'] ?? 'unix:///var/run/docker.sock';
  const options = host.startsWith('unix://')
    ? { socketPath: host.slice('unix://'.length) }
    : (() => {
        const url = new URL(host.replace(/^tcp:/, 'http:'));
        return { host: url.hostname, port: Number(url.port || 2375) };
      })();
  return new Promise((resolve) => {
    const req = request({ ...options, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Kafka brokers from KAFKA_BROKERS (comma-separated host:port), checked for reachability. */
export async function kafkaFromEnv(): Promise<EngineTarget<{ brokers: string[] }>> {
  const raw = process.env['KAFKA_BROKERS'];
  if (!raw) return { available: false, why: 'KAFKA_BROKERS is not set' };
  const brokers = raw
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  for (const broker of brokers) {
    const [host, port] = splitHostPort(broker, 9092);
    if (await tcpReachable(host, port)) return { available: true, target: { brokers }, via: 'KAFKA_BROKERS' };
  }
  return { available: false, why: `no broker of KAFKA_BROKERS=${raw} accepts a TCP connection` };
}

/** Vault from VAULT_ADDR + VAULT_TOKEN, checked with its unauthenticated health endpoint. */
export async function vaultFromEnv(): Promise<EngineTarget<{ endpoint: string; token: string }>> {
  const endpoint = process.env['VAULT_ADDR'];
  const token = process.env['VAULT_TOKEN'];
  if (!endpoint) return { available: false, why: 'VAULT_ADDR is not set' };
  if (!token) return { available: false, why: 'VAULT_ADDR is set but VAULT_TOKEN is not' };
  try {
    const res = await fetch(new URL('/v1/sys/health', endpoint), { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    if (res.status !== 200)
      return { available: false, why: `Vault at ${endpoint} is not ready (HTTP ${res.status})` };
    return { available: true, target: { endpoint, token }, via: 'VAULT_ADDR' };
  } catch (error) {
    return { available: false, why: `Vault at ${endpoint} does not answer (${(error as Error).message})` };
  }
}

/**
 * PostgreSQL from TEST_DATABASE_URL (a postgres:// or postgresql:// URL) or, when it is unset, the local default
 * postgres://postgres@127.0.0.1:5432/test, checked for reachability. A malformed TEST_DATABASE_URL is reported as
 * unavailable with the reason (never thrown, and never echoed: it may hold a password).
 */
export async function postgresFromEnv(): Promise<EngineTarget<{ url: string }>> {
  const fromEnv = process.env['TEST_DATABASE_URL'];
  const url = fromEnv ?? 'postgres://postgres@127.0.0.1:5432/test';
  const via = fromEnv !== undefined ? 'TEST_DATABASE_URL' : 'local default';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { available: false, why: `${via} is not a URL (expected postgres://user@host:port/database)` };
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:')
    return { available: false, why: `${via} is not a postgres:// or postgresql:// URL` };
  if (parsed.hostname === '') return { available: false, why: `${via} names no host` };
  if (await tcpReachable(parsed.hostname, Number(parsed.port || 5432)))
    return { available: true, target: { url }, via };
  return { available: false, why: `PostgreSQL at ${parsed.host} does not accept connections` };
}

export function splitHostPort(value: string, defaultPort: number): [string, number] {
  const index = value.lastIndexOf(':');
  if (index <= 0) return [value, defaultPort];
  return [value.slice(0, index), Number(value.slice(index + 1)) || defaultPort];
}

const announced = new Set<string>();

/**
 * Says loudly, once per suite, that a suite is skipped and why. The line goes to stderr and stdout so it shows
 * in CI logs whichever stream the runner keeps.
 */
export function announceSkip(suite: string, why: string): void {
  if (announced.has(suite)) return;
  announced.add(suite);
  const line = `SKIPPED ${suite}: ${why}`;
  process.stdout.write(`${line}\n`);
  process.stderr.write(`${line}\n`);
}
