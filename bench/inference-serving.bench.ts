// The cloud inference tier under load: the fraud MLP served by services/inference (released in a real registry,
// verified, pooled, dynamically batched) over the Open Inference Protocol, HTTP/JSON and gRPC, with 1, 16 and 64
// concurrent clients in a second process (bench/inference/load.ts). Peer, same run: a bare onnxruntime-node
// `session.run` loop (one row per run, one session, no server) on the same model and rows.
// Targets (issue 15): p99 < 5 ms at 64 concurrent; throughput with batching >= 50% of the bare loop's.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildOnnx, FRAUD_MLP, initWeights } from '@edgefl/model';
import { bootstrap as registryBootstrap } from '@edgefl/registry';
import { bootstrap as inferenceBootstrap } from '@edgefl/inference';
import { build } from 'hdr-histogram-js';
import { freePort, runJsonChild } from './lib/process.ts';
import { adminCall } from './lib/http.ts';
import { figure, writeReport, type Figure } from './lib/report.ts';

const SECONDS = Number(process.env.INFERENCE_BENCH_SECONDS ?? 5);
const LEVELS = [1, 16, 64];
const ADMIN_TOKEN = `bench-admin-${randomUUID()}`;
const TENANT_TOKEN = `bench-tenant-${randomUUID()}`;
const PROTO = join(import.meta.dirname, '..', 'services', 'inference', 'proto', 'grpc_predict_v2.proto');

interface LoadResult {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  statuses: Record<string, number>;
}

function load(mode: 'http' | 'grpc', target: string, clients: number, seconds: number): Promise<LoadResult> {
  const args = [mode, target, String(seconds), String(clients), TENANT_TOKEN, PROTO];
  return runJsonChild(join(import.meta.dirname, 'inference', 'load.ts'), args, 'load generator');
}

const admin = (base: string, method: string, path: string, body?: unknown) =>
  adminCall(ADMIN_TOKEN, base, method, path, body);

/** The peer: one session, one row per run, awaited back to back, for `seconds`. */
async function bareLoop(
  onnx: Uint8Array,
  seconds: number,
): Promise<{ rps: number; p50: number; p99: number }> {
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const rows = Array.from({ length: 256 }, (_, r) =>
    new Float32Array(30).map((_, i) => Math.sin(r * 31 + i)),
  );
  const histogram = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  for (let i = 0; i < 1000; i++)
    await session.run({ input: new ort.Tensor('float32', rows[i % 256]!, [1, 30]) });
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  let runs = 0;
  while (performance.now() < deadline) {
    const t = performance.now();
    await session.run({ input: new ort.Tensor('float32', rows[runs % 256]!, [1, 30]) });
    histogram.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    runs++;
  }
  const elapsed = (performance.now() - started) / 1000;
  await session.release();
  return {
    rps: runs / elapsed,
    p50: histogram.getValueAtPercentile(50) / 1000,
    p99: histogram.getValueAtPercentile(99) / 1000,
  };
}

const dir = mkdtempSync(join(tmpdir(), 'edgefl-inference-bench-'));
const silent = { write: () => undefined };
const busPath = join(dir, 'bus.sqlite');
const registry = await registryBootstrap({
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    EDGEFL_DATA_DIR: join(dir, 'registry'),
    EDGEFL_BUS_PATH: busPath,
    LOG_LEVEL: 'warn',
    REGISTRY_ADMIN_TOKEN: ADMIN_TOKEN,
  },
  shutdownHooks: false,
  logDestination: silent,
});
const grpcPort = await freePort();
const inference = await inferenceBootstrap({
  env: {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: String(await freePort()),
    EDGEFL_DATA_DIR: join(dir, 'inference'),
    EDGEFL_BUS_PATH: busPath,
    LOG_LEVEL: 'warn',
    INFERENCE_REGISTRY_URL: registry.url,
    INFERENCE_REGISTRY_TOKEN: ADMIN_TOKEN,
    INFERENCE_TENANT_TOKENS: `bench=${TENANT_TOKEN}`,
    INFERENCE_GRPC_PORT: String(grpcPort),
    // every request computes: the cache would answer the 256 rotating rows from memory
    INFERENCE_CACHE_ENTRIES: '0',
  },
  shutdownHooks: false,
  logDestination: silent,
});
try {
  const onnx = buildOnnx(FRAUD_MLP, initWeights(FRAUD_MLP, 42, 0.1));
  await admin(registry.url, 'POST', '/v1/tenants', { id: 'bench', name: 'Bench' });
  await admin(registry.url, 'POST', '/v1/tenants/bench/models', {
    id: 'fraud',
    name: 'Fraud',
    spec: FRAUD_MLP,
  });
  const up = await fetch(`${registry.url}/v1/models/fraud/versions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/octet-stream' },
    body: Buffer.from(onnx),
  });
  if (up.status !== 201) throw new Error(`upload: ${up.status}`);
  await admin(registry.url, 'POST', '/v1/models/fraud/releases', { version: 1, stages: [100] });
  for (let i = 0; ; i++) {
    const res = await fetch(`${inference.url}/v2/models/fraud/ready`, {
      headers: { authorization: `Bearer ${TENANT_TOKEN}` },
    });
    await res.arrayBuffer();
    if (res.status === 200) break;
    if (i > 600) throw new Error('the model never became ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  const loadBefore = loadavg();
  const bare = await bareLoop(onnx, SECONDS);
  await load('http', inference.url, 16, 1); // warm-up
  const results: Record<string, LoadResult> = {};
  for (const mode of ['http', 'grpc'] as const)
    for (const clients of LEVELS) {
      const r = await load(mode, mode === 'http' ? inference.url : `127.0.0.1:${grpcPort}`, clients, SECONDS);
      if (r.errors > 0)
        throw new Error(`${mode} at ${clients}: ${r.errors} failed requests ${JSON.stringify(r.statuses)}`);
      results[`${mode}-${clients}`] = r;
    }
  const bareAfter = await bareLoop(onnx, SECONDS);
  const loadAfter = loadavg();
  const metrics = await (await fetch(`${inference.url}/metrics`)).text();
  const batchSum = Number(/edgefl_inference_batch_size_sum\{[^}]*\} ([\d.e+]+)/.exec(metrics)?.[1] ?? 0);
  const batchCount = Number(/edgefl_inference_batch_size_count\{[^}]*\} ([\d.e+]+)/.exec(metrics)?.[1] ?? 1);
  const peerRps = (bare.rps + bareAfter.rps) / 2;
  const peer = { name: 'bare session.run loop (1 row/run, 1 session)', value: peerRps };
  const figures: Figure[] = [];
  for (const mode of ['http', 'grpc'] as const)
    for (const clients of LEVELS) {
      const r = results[`${mode}-${clients}`]!;
      figures.push(figure(`${mode} requests/s, ${clients} clients`, 'req/s', r.rps, peer));
      figures.push(
        figure(`${mode} p50, ${clients} clients`, 'ms', r.p50, {
          name: 'bare session.run p50',
          value: (bare.p50 + bareAfter.p50) / 2,
        }),
      );
      figures.push(
        figure(`${mode} p99, ${clients} clients`, 'ms', r.p99, {
          name: 'bare session.run p99',
          value: (bare.p99 + bareAfter.p99) / 2,
        }),
      );
    }
  const best = Math.max(...Object.values(results).map((r) => r.rps));
  const p99at64 = Math.max(results['http-64']!.p99, results['grpc-64']!.p99);
  writeReport({
    name: 'inference-serving',
    figures,
    notes: [
      `target p99 < 5 ms at 64 concurrent: http ${results['http-64']!.p99.toFixed(2)} ms, grpc ${results['grpc-64']!.p99.toFixed(2)} ms -> ${p99at64 < 5 ? 'met' : 'NOT met'}`,
      `target throughput >= 50% of the bare loop: best ${best.toFixed(0)} req/s vs ${peerRps.toFixed(0)} runs/s = ${((100 * best) / peerRps).toFixed(1)}% -> ${best >= 0.5 * peerRps ? 'met' : 'NOT met'}`,
      `bare loop before the load ${bare.rps.toFixed(0)} runs/s, after ${bareAfter.rps.toFixed(0)} runs/s (the peer's figure is their mean)`,
      `mean rows per session run over the whole load: ${(batchSum / Math.max(1, batchCount)).toFixed(2)} (dynamic batching, max 32 rows, 500 us max queue delay, pool of 2 sessions, 1 intra-op thread each)`,
      `load: ${SECONDS} s per level, clients in a second process on the same 2-core machine, one request in flight per client; result cache off`,
      `machine load average (1, 5, 15 min) before ${loadBefore.map((l) => l.toFixed(2)).join(', ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(', ')} (other engineers share it)`,
    ],
  });
} finally {
  await inference.close();
  await registry.close();
  rmSync(dir, { recursive: true, force: true });
}
