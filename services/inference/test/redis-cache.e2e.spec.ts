import { FRAUD_MLP } from '@edgefl/model';
import { announceSkip, eventually, tcpReachable } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acme, call, inferBody, rowsOf, Stack, weights, type Running } from './stack.js';

const REDIS_URL = process.env['INFERENCE_TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const { hostname, port } = new URL(REDIS_URL);
const redisUp = await tcpReachable(hostname, Number(port || 6379));
if (!redisUp)
  announceSkip(
    'inference Redis result cache e2e',
    `no Redis accepts connections at ${hostname}:${port || 6379}`,
  );

describe.skipIf(!redisUp)('inference result cache shared by replicas through Redis (REDIS_URL)', () => {
  let stack: Stack;
  let a: Running;
  let b: Running;
  type Answer = {
    model_version: string;
    parameters: { cache_hit: boolean };
    outputs: Array<{ data: number[] }>;
  };

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.tenant('acme');
    await stack.model('acme', 'fraud', FRAUD_MLP);
    await stack.version('fraud', 1, FRAUD_MLP, weights(FRAUD_MLP, 3));
    await stack.release('acme', 'fraud', 1);
    a = await stack.inference({ REDIS_URL });
    b = await stack.inference({ REDIS_URL });
    for (const replica of [a, b])
      await eventually('fraud serves', async () => {
        const r = await call(replica.url, 'GET', '/v2/models/fraud/ready', undefined, acme);
        return r.status === 200;
      });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('reports the cache in readiness', async () => {
    const ready = await call<{ info: Record<string, unknown> }>(a.url, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(Object.keys(ready.body.info).sort()).toEqual(['bus', 'cache', 'lifecycle']);
  });

  it('answers on one replica what another computed', async () => {
    // inputs no earlier run can have cached (the key hashes model, version and the input bytes)
    const rows = rowsOf(2, 30, (Date.now() ^ process.pid) >>> 0);
    const first = await call<Answer>(a.url, 'POST', '/v2/models/fraud/infer', inferBody(rows), acme);
    expect(first.body.parameters.cache_hit).toBe(false);
    const second = await eventually('the entry reaches Redis', async () => {
      const res = await call<Answer>(b.url, 'POST', '/v2/models/fraud/infer', inferBody(rows), acme);
      return res.body.parameters.cache_hit ? res : undefined;
    });
    expect(second.body.outputs).toEqual(first.body.outputs);
  });
});
