import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { openCatalogBus, type EventBus, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { buildOnnx, initWeights, type ModelSpec, type NamedTensor } from '@edgefl/model';
import {
  eventually,
  freePort,
  httpClient,
  startTestService,
  tempDir,
  type ServiceBootstrap,
} from '@edgefl/testing';
import { SignJWT } from 'jose';
import { bootstrap as inferenceBootstrap } from '../src/main.js';

/**
 * The registry is started the way the launcher composes services: its entry module loaded by name at run time
 * (services never import each other statically), from its build (`npm test` builds every project first).
 */
async function registryBootstrap(): Promise<ServiceBootstrap> {
  const name = 'registry';
  try {
    const module = (await import(/* @vite-ignore */ `@edgefl/${name}`)) as { bootstrap: ServiceBootstrap };
    return module.bootstrap;
  } catch (error) {
    throw new Error(
      `cannot load @edgefl/${name} (its build): run \`npx nx run ${name}:build\` or \`npm run build\` first`,
      { cause: error },
    );
  }
}

export const REGISTRY_TOKEN = `registry-admin-${randomUUID()}`;
export const INFERENCE_ADMIN = `inference-admin-${randomUUID()}`;
export const ACME = `acme-token-${randomUUID()}`;
export const GLOBEX = `globex-token-${randomUUID()}`;

export const acme = { authorization: `Bearer ${ACME}` };
export const globex = { authorization: `Bearer ${GLOBEX}` };
export const inferenceAdmin = { authorization: `Bearer ${INFERENCE_ADMIN}` };
export const registryCall = httpClient({ authorization: `Bearer ${REGISTRY_TOKEN}` });
export const call = httpClient();

/** Weights of a reference model, seeded; `nudge` shifts some weights so versions differ. */
export function weights(spec: ModelSpec, seed: number, nudge = 0): NamedTensor[] {
  const w = initWeights(spec, seed, 0.3);
  for (let i = 0; i < nudge; i++) w[0]!.data[i * 3] = w[0]!.data[i * 3]! + 0.05;
  return w;
}

export type Running = Awaited<ReturnType<typeof startTestService>>;

/** A real registry and real inference apps on free ports, on one bus (the enclosing describeOnBuses' mode). */
export class Stack {
  registry!: Running;
  readonly inferences: Running[] = [];
  bus!: EventBus;
  typed!: TypedBus<KafkaTopicValues>;
  busPath!: string;
  #dir!: Awaited<ReturnType<typeof tempDir>>;
  #device = 0;

  static async start(): Promise<Stack> {
    const stack = new Stack();
    stack.#dir = await tempDir('edgefl-inference-e2e-');
    stack.busPath = join(stack.#dir.path, 'bus.sqlite');
    stack.registry = await startTestService(await registryBootstrap(), {
      REGISTRY_ADMIN_TOKEN: REGISTRY_TOKEN,
      EDGEFL_BUS_PATH: stack.busPath,
      REGISTRY_ROLLOUT_TICK_MS: '50',
      REGISTRY_MIN_SOAK_MS: '0',
      REGISTRY_MIN_DEVICES: '0',
    });
    const { bus, typed } = await openCatalogBus(stack.registry.bus, 'edgefl-inference-test');
    stack.bus = bus;
    stack.typed = typed;
    return stack;
  }

  /** Starts an inference app on this stack's registry and bus; `env` adds or overrides variables. */
  async inference(env: Record<string, string> = {}): Promise<Running & { grpcPort: number }> {
    const grpcPort = await freePort();
    const running = await startTestService(inferenceBootstrap, {
      EDGEFL_BUS_PATH: this.busPath,
      INFERENCE_REGISTRY_URL: this.registry.url,
      INFERENCE_REGISTRY_TOKEN: REGISTRY_TOKEN,
      INFERENCE_TENANT_TOKENS: `acme=${ACME},globex=${GLOBEX}`,
      INFERENCE_ADMIN_TOKEN: INFERENCE_ADMIN,
      INFERENCE_GRPC_PORT: String(grpcPort),
      INFERENCE_POOL_SIZE: '1',
      INFERENCE_WARMUP_RUNS: '1',
      ...env,
    });
    this.inferences.push(running);
    return Object.assign(running, { grpcPort });
  }

  async tenant(id: string): Promise<void> {
    const res = await registryCall(this.registry.url, 'POST', '/v1/tenants', { id, name: id });
    if (res.status !== 201) throw new Error(`tenant ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  async model(tenant: string, id: string, spec: ModelSpec): Promise<void> {
    const res = await registryCall(this.registry.url, 'POST', `/v1/tenants/${tenant}/models`, {
      id,
      name: id,
      spec,
    });
    if (res.status !== 201) throw new Error(`model ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Uploads ONNX of `spec` with these weights as `version`. */
  async version(model: string, version: number, spec: ModelSpec, w: NamedTensor[]): Promise<void> {
    const res = await fetch(`${this.registry.url}/v1/models/${model}/versions?version=${version}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${REGISTRY_TOKEN}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from(buildOnnx(spec, w)),
    });
    if (res.status !== 201) throw new Error(`version ${model}@${version}: ${res.status} ${await res.text()}`);
  }

  /**
   * Releases `version` in one 100 % stage and completes the release (a device installs it, its health passes), so
   * the model can take its next release. Returns the release id.
   */
  async release(tenant: string, model: string, version: number): Promise<string> {
    const url = this.registry.url;
    const created = await registryCall<{ id: string; state: string }>(
      url,
      'POST',
      `/v1/models/${model}/releases`,
      {
        version,
        stages: [100],
        gates: { minDevicesReporting: 0, minSoakMs: 0 },
      },
    );
    if (created.status !== 201) throw new Error(`release: ${created.status} ${JSON.stringify(created.body)}`);
    const id = created.body.id;
    const device = `term-${model}-${++this.#device}`;
    const keys = generateKeyPairSync('ed25519');
    const x = keys.publicKey.export({ format: 'jwk' }).x!;
    const registered = await registryCall(url, 'POST', `/v1/tenants/${tenant}/devices`, {
      id: device,
      publicKey: Buffer.from(x, 'base64url').toString('base64'),
      modelId: model,
    });
    if (registered.status !== 201)
      throw new Error(`device: ${registered.status} ${JSON.stringify(registered.body)}`);
    // the device reads its manifest with its own token (which assigns it to the stage)
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(device)
      .setAudience('edgefl-registry')
      .setIssuedAt()
      .setExpirationTime('60s')
      .setJti(randomUUID())
      .sign(createPrivateKey(keys.privateKey.export({ format: 'pem', type: 'pkcs8' })));
    const token = await call<{ token: string }>(url, 'POST', `/v1/devices/${device}/token`, { assertion });
    if (token.status !== 200 && token.status !== 201) throw new Error(`token: ${token.status}`);
    const manifest = await call<{ version: number; releaseId: string | null }>(
      url,
      'GET',
      `/v1/devices/${device}/manifest`,
      undefined,
      { authorization: `Bearer ${token.body.token}` },
    );
    if (manifest.body.releaseId !== id) throw new Error(`${device} is not in release ${id}`);
    const reported = await registryCall(url, 'POST', `/v1/devices/${device}/ota-status`, {
      modelId: model,
      releaseId: id,
      toVersion: version,
      state: 'ACTIVE',
    });
    if (reported.status !== 202) throw new Error(`ota-status: ${reported.status}`);
    await eventually(`release ${id} completes`, async () => {
      const r = await registryCall<{ state: string }>(url, 'GET', `/v1/releases/${id}`);
      return r.body.state === 'COMPLETED' ? true : undefined;
    });
    return id;
  }

  async stop(): Promise<void> {
    for (const running of this.inferences.splice(0)) await running.stop().catch(() => undefined);
    await this.bus?.close();
    await this.registry?.stop();
    await this.#dir?.remove();
  }
}

/** An OIP FP32 inference request for `rows` rows. */
export function inferBody(rows: number[][], extra: Record<string, unknown> = {}) {
  return {
    inputs: [{ name: 'input', shape: [rows.length, rows[0]!.length], datatype: 'FP32', data: rows }],
    ...extra,
  };
}

/** Seeded rows of N(0, 1)-ish values. */
export function rowsOf(count: number, width: number, seed: number): number[][] {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 4 - 2;
  };
  return Array.from({ length: count }, () => Array.from({ length: width }, () => Math.fround(next())));
}

/** Every value published on a catalog topic, from its start, while the collector runs. */
export async function collect<T extends keyof KafkaTopicValues & string>(
  stack: Stack,
  topic: T,
): Promise<{ values: KafkaTopicValues[T][]; close(): Promise<void> }> {
  const values: KafkaTopicValues[T][] = [];
  const sub = await stack.typed.subscribe({
    group: `test-${randomUUID()}`,
    topics: [topic],
    fromBeginning: true,
    handler: (record) => {
      values.push(record.value as KafkaTopicValues[T]);
    },
  });
  return { values, close: () => sub.close() };
}
