import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { buildOnnx, initWeights, type ModelSpec, type NamedTensor } from '@edgefl/model';
import { freePort, tempDir } from '@edgefl/testing';
import { cliBin, workspaceRoot } from './cli-process.js';

/** A real registry app (its build, as a child process) on a free port, device auth required. */
export interface RegistryProcess {
  url: string;
  adminToken: string;
  child: ChildProcess;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  upload(modelId: string, bytes: Uint8Array): Promise<number>;
  release(modelId: string, version: number): Promise<string>;
  /** Releases a version to 100%, reports a healthy stage and waits until it is COMPLETED (the stable version). */
  releaseStable(modelId: string, version: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startRegistryProcess(env: Record<string, string> = {}): Promise<RegistryProcess> {
  const dir = await tempDir('edgefl-device-registry-');
  const port = await freePort();
  const adminToken = `device-tests-${randomUUID()}`;
  const child = spawn(process.execPath, [join(workspaceRoot, 'services/registry/dist/main.js')], {
    env: {
      PATH: process.env['PATH'],
      HOST: '127.0.0.1',
      PORT: String(port),
      EDGEFL_DATA_DIR: dir.path,
      LOG_LEVEL: 'warn',
      REGISTRY_ADMIN_TOKEN: adminToken,
      REGISTRY_DEVICE_AUTH: 'required',
      REGISTRY_ROLLOUT_TICK_MS: '50',
      REGISTRY_MIN_SOAK_MS: '0',
      REGISTRY_MIN_DEVICES: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`the registry exited: ${stderr.slice(-2000)}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (i > 600) throw new Error(`the registry did not become ready: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const call = async <T>(method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  return {
    url,
    adminToken,
    child,
    call,
    async upload(modelId, bytes) {
      const res = await fetch(`${url}/v1/models/${modelId}/versions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/octet-stream' },
        body: Buffer.from(bytes),
      });
      if (res.status !== 201) throw new Error(`upload: HTTP ${res.status} ${await res.text()}`);
      return ((await res.json()) as { version: number }).version;
    },
    async releaseStable(modelId, version) {
      const id = await this.release(modelId, version);
      // stages advance only on installs: one installer device of the model installs what the release offers it
      const model = await call<{ tenantId: string }>('GET', `/v1/models/${modelId}`);
      const installer = `installer-${modelId}`;
      const publicKey = generateKeyPairSync('ed25519')
        .publicKey.export({ format: 'der', type: 'spki' })
        .subarray(-32)
        .toString('base64');
      const registered = await call('POST', `/v1/tenants/${model.body.tenantId}/devices`, {
        id: installer,
        publicKey,
        modelId,
      });
      if (registered.status !== 201 && registered.status !== 409)
        throw new Error(`registering ${installer}: HTTP ${registered.status}`);
      const offered = await call<{ version: number | null }>('GET', `/v1/devices/${installer}/manifest`);
      const installed = await call('POST', `/v1/devices/${installer}/ota-status`, {
        modelId,
        releaseId: id,
        toVersion: offered.body.version ?? version,
        state: 'ACTIVE',
      });
      if (installed.status !== 202) throw new Error(`reporting ${installer}: HTTP ${installed.status}`);
      await call('POST', `/v1/releases/${id}/health`, {
        stage: 'full',
        windowStart: Date.now() - 60_000,
        windowEnd: Date.now(),
        devicesReporting: 1,
        otaFailureRate: 0,
        inferenceErrorRate: 0,
        p95LatencyMs: 1,
        accuracy: 0.9,
        meanConfidence: 0.9,
        driftScore: 0,
      });
      for (
        let i = 0;
        (await call<{ state: string }>('GET', `/v1/releases/${id}`)).body.state !== 'COMPLETED';
        i++
      ) {
        if (i > 400) throw new Error(`the release of ${modelId} v${version} did not complete`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return id;
    },
    async release(modelId, version) {
      const created = await call<{ id: string }>('POST', `/v1/models/${modelId}/releases`, {
        version,
        stages: [100],
      });
      if (created.status !== 201)
        throw new Error(`release: HTTP ${created.status} ${JSON.stringify(created.body)}`);
      return created.body.id;
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await dir.remove();
    },
  };
}

/** Weights of `spec` nudged by `step` (a new version). */
export function versionWeights(spec: ModelSpec, seed: number, step: number): NamedTensor[] {
  const w = initWeights(spec, seed, 0.1);
  for (const t of w) for (let i = 0; i < t.data.length; i += 7) t.data[i] = t.data[i]! + step * 0.01;
  return w;
}

export const onnxOf = (spec: ModelSpec, weights: NamedTensor[]) => buildOnnx(spec, weights);

/** Sets up tenant `acme`, model `modelId` (spec) and devices; returns a helper to publish versions. */
export async function seedRegistry(
  registry: RegistryProcess,
  modelId: string,
  spec: ModelSpec,
  devices: Array<{ id: string; publicKey: string; hardwareClass?: string }>,
  tenant = 'acme',
): Promise<void> {
  await registry.call('POST', '/v1/tenants', { id: tenant, name: tenant });
  const model = await registry.call('POST', `/v1/tenants/${tenant}/models`, {
    id: modelId,
    name: modelId,
    spec,
    deltaWindow: 3,
  });
  if (model.status !== 201) throw new Error(`model: ${model.status} ${JSON.stringify(model.body)}`);
  for (const d of devices) {
    const r = await registry.call('POST', `/v1/tenants/${tenant}/devices`, {
      id: d.id,
      publicKey: d.publicKey,
      modelId,
      hardware: { class: d.hardwareClass ?? 'pos', ramBytes: 1 << 30, firmware: '1.0.0' },
    });
    if (r.status !== 201) throw new Error(`device: ${r.status} ${JSON.stringify(r.body)}`);
  }
}

export type Tamper = (
  req: IncomingMessage,
  upstream: { status: number; headers: Record<string, string>; body: Buffer },
  res: ServerResponse,
) => boolean;

/**
 * A man in the middle between the device and the real registry: forwards every request, and lets a test rewrite
 * or misdeliver the answer (`tamper` returns true when it answered itself).
 */
export async function startProxy(
  target: string,
): Promise<{ url: string; tamper: Tamper | null; requests: string[]; close(): Promise<void> }> {
  const state: { tamper: Tamper | null; requests: string[] } = { tamper: null, requests: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push(`${req.method} ${req.url} ${req.headers['range'] ?? ''}`.trim());
      const up = httpRequest(
        `${target}${req.url}`,
        { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
        (upRes) => {
          const body: Buffer[] = [];
          upRes.on('data', (c: Buffer) => body.push(c));
          upRes.on('end', () => {
            const headers = Object.fromEntries(
              Object.entries(upRes.headers).filter(([, v]) => typeof v === 'string') as Array<
                [string, string]
              >,
            );
            const upstream = { status: upRes.statusCode ?? 502, headers, body: Buffer.concat(body) };
            if (state.tamper?.(req, upstream, res)) return;
            res.writeHead(upstream.status, upstream.headers);
            res.end(upstream.body);
          });
        },
      );
      up.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    get tamper() {
      return state.tamper;
    },
    set tamper(t) {
      state.tamper = t;
    },
    requests: state.requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A plain aedes broker on a free port (the transport only; the gateway is not used). */
export async function startBroker(): Promise<{ url: string; aedes: Aedes; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker();
  const server: TcpServer = createTcpServer(aedes.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    aedes,
    close: () =>
      new Promise((r) => {
        aedes.close(() => server.close(() => r()));
      }),
  };
}

/**
 * Runs `edgefl <args>` to completion without blocking this process (tests that host the MQTT broker in-process
 * cannot use spawnSync: the broker would not answer while it waits).
 */
export function runCliAsync(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      cwd: workspaceRoot,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}
