// Shared by bench/gateway-*.bench.ts: a JWKS and device tokens in the registry's format, the broker processes
// (serve.ts), and the load generator (load.ts). Erasable TypeScript only (Node type stripping).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const here = import.meta.dirname;

/** Serves a JWKS on loopback and signs device tokens with it (EdDSA, as the registry does). */
export async function tokenIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const kid = randomUUID();
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }] });
  const server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
  return {
    url,
    token: (deviceId: string, tenant: string) =>
      new SignJWT({ tenant, group: null })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid })
        .setIssuer('edgefl-registry')
        .setAudience(['edgefl-mqtt', 'edgefl-registry'])
        .setSubject(deviceId)
        .setIssuedAt()
        .setExpirationTime('2h')
        .setJti(randomUUID())
        .sign(privateKey),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface BrokerProcess {
  url: string;
  ask(command: string): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

/** Starts serve.ts (a gateway or plain aedes) in its own process. */
export async function startBroker(kind: 'gateway' | 'aedes', jwksUrl: string): Promise<BrokerProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), `edgefl-bench-${kind}-`));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--expose-gc', join(here, 'serve.ts'), kind, jwksUrl, dataDir],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () =>
    JSON.parse(((await lines.next()).value as string) ?? '{}') as Record<string, unknown>;
  const { url } = (await next()) as { url: string };
  return {
    url,
    async ask(command) {
      child.stdin!.write(`${command}\n`);
      return (await next()) as Record<string, number>;
    },
    async stop() {
      child.stdin!.write('stop\n');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

export interface LoadSpec {
  url: string;
  devices: Array<{ id: string; tenant: string; password: string | null }>;
  mode: 'publish' | 'hold';
  seconds: number;
  inFlight: number;
  payloads: Record<string, string[]>;
  topic: string;
}

/** Runs load.ts with a spec; for `hold`, resolves once connected and returns a release function. */
export function runLoad(spec: LoadSpec): { result: Promise<Record<string, unknown>>; release(): void } {
  const file = join(mkdtempSync(join(tmpdir(), 'edgefl-bench-load-')), 'spec.json');
  writeFileSync(file, JSON.stringify(spec));
  const child = spawn(process.execPath, [join(here, 'load.ts'), file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const result = (async () => {
    const line = (await lines.next()).value as string | undefined;
    if (!line) throw new Error('the load generator printed nothing (see its stderr)');
    return JSON.parse(line) as Record<string, unknown>;
  })();
  return { result, release: () => child.stdin!.end() };
}

/** True when a TCP connection to host:port opens within a second. */
export function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
