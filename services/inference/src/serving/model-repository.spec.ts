import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import {
  buildChunkTree,
  buildOnnx,
  ed25519KeyId,
  forward,
  FRAUD_MLP,
  initWeights,
  sha256Hex,
  signManifest,
  type ReleaseManifest,
} from '@edgefl/model';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inferenceConfig } from '../config.js';
import { InferenceMetrics } from '../observability/inference-metrics.js';
import { ModelRepository, type ReleaseToServe } from './model-repository.js';
import { RegistryClient } from './registry-client.js';

const keys = generateKeyPairSync('ed25519');
const rawPublic = Buffer.from(keys.publicKey.export({ format: 'jwk' }).x!, 'base64url');
const signer = async (bytes: Uint8Array) => ({
  keyId: ed25519KeyId(rawPublic),
  signature: new Uint8Array(sign(null, bytes, keys.privateKey)),
});

/** Artifacts a tiny HTTP server hands out at the registry's artifact path (the real download path is exercised). */
const artifacts = new Map<string, Uint8Array>();
let server: Server;
let base: string;

function manifestOf(version: number, onnx: Uint8Array, canary?: ReleaseManifest['canary']): ReleaseManifest {
  const tree = buildChunkTree(onnx, 4096);
  return {
    _type: 'edgefl.release-manifest',
    specVersion: 1,
    modelId: 'fraud',
    version,
    label: `v${version}`,
    created: new Date(Date.now() - 1000).toISOString(),
    expires: new Date(Date.now() + 3_600_000).toISOString(),
    parentVersion: null,
    artifact: {
      format: 'onnx',
      size: onnx.byteLength,
      sha256: sha256Hex(onnx),
      chunkSize: 4096,
      merkleRoot: tree.root,
    },
    provenance: { roundId: null, participants: 0, dp: null, metrics: {} },
    targeting: { tenants: [], cohorts: [] },
    hardwareClasses: [],
    ...(canary ? { canary } : {}),
    deltas: [],
  };
}

async function release(
  version: number,
  seed: number,
  options: { canaryOff?: number; serve?: Uint8Array } = {},
) {
  const weights = initWeights(FRAUD_MLP, seed, 0.3);
  const onnx = buildOnnx(FRAUD_MLP, weights);
  const input = new Float32Array(30).fill(0.5);
  const expected = Array.from(forward(FRAUD_MLP, weights, input, 1)).map((v) => v + (options.canaryOff ?? 0));
  const manifest = manifestOf(version, onnx, {
    inputs: [Array.from(input)],
    outputs: [expected],
    tolerance: 1e-4,
  });
  artifacts.set(`/v1/models/fraud/versions/${version}/artifact`, options.serve ?? onnx);
  const envelope = await signManifest(manifest, signer);
  const offer: ReleaseToServe = {
    tenant: 'acme',
    modelId: 'fraud',
    releaseId: `rel-${version}`,
    version,
    sha256: manifest.artifact.sha256,
    signedManifest: JSON.stringify(envelope),
  };
  return { offer, weights };
}

describe('ModelRepository', () => {
  const registry = new Registry();
  const metrics = new InferenceMetrics(registry);
  let repository: ModelRepository;

  const refusals = async (reason: string) =>
    (await registry.getSingleMetric('edgefl_inference_model_loads_total')!.get()).values.find(
      (v) => v.labels['outcome'] === 'refused' && v.labels['reason'] === reason,
    )?.value ?? 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const bytes = artifacts.get(req.url ?? '');
      if (!bytes) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.from(bytes));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const config = inferenceConfig.load({
      INFERENCE_RELEASE_KEYS: rawPublic.toString('base64'),
      INFERENCE_POOL_SIZE: '2',
      INFERENCE_WARMUP_RUNS: '1',
    });
    repository = new ModelRepository(
      config.own,
      new RegistryClient(base, undefined),
      metrics,
      pino({ level: 'silent' }),
    );
  });
  afterAll(async () => {
    await repository?.close();
    server?.close();
  });

  it('serves a verified, validated version; a version whose canary fails never serves and v1 keeps serving', async () => {
    const v1 = await release(1, 1);
    repository.offer(v1.offer);
    await repository.settled();
    const served = repository.resolve('acme', 'fraud');
    expect(served.version).toBe(1);
    expect(served.sessions).toHaveLength(2);
    const bad = await release(2, 2, { canaryOff: 0.01 });
    repository.offer(bad.offer);
    await repository.settled();
    expect(await refusals('validation-failed')).toBe(1);
    expect(repository.resolve('acme', 'fraud').version).toBe(1);
    expect(() => repository.resolve('acme', 'fraud', 2)).toThrow(/not loaded/);
  });

  it('refuses an artifact that is not the one the manifest signs', async () => {
    const other = buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 99, 0.3));
    const tampered = await release(3, 3, { serve: other });
    repository.offer(tampered.offer);
    await repository.settled();
    expect(await refusals('hash-mismatch')).toBe(1);
    expect(repository.resolve('acme', 'fraud').version).toBe(1);
  });

  it('refuses a lower version than the serving one (rollback), and another tenant naming the model', async () => {
    const v5 = await release(5, 5);
    repository.offer(v5.offer);
    await repository.settled();
    expect(repository.resolve('acme', 'fraud').version).toBe(5);
    const v4 = await release(4, 4);
    repository.offer(v4.offer);
    await repository.settled();
    expect(await refusals('rollback')).toBe(1);
    repository.offer({ ...v4.offer, version: 6, tenant: 'globex' });
    expect(await refusals('tenant-mismatch')).toBe(1);
    expect(repository.resolve('acme', 'fraud').version).toBe(5);
    expect(() => repository.resolve('globex', 'fraud')).toThrow("unknown model 'fraud'");
  });

  it('answers through the pool with the reference outputs', async () => {
    const v7 = await release(7, 7);
    repository.offer(v7.offer);
    await repository.settled();
    const input = new Float32Array(60).map((_, i) => Math.sin(i));
    const out = await repository.resolve('acme', 'fraud').batcher.submit(input, 2);
    const want = forward(FRAUD_MLP, v7.weights, input, 2);
    out.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
  });
});
