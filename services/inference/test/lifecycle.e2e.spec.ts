import { randomUUID } from 'node:crypto';
import { forward, FRAUD_MLP, type NamedTensor } from '@edgefl/model';
import type { ReleaseEvent } from '@edgefl/contracts';
import { describeOnBuses, eventually } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { acme, call, collect, inferBody, rowsOf, Stack, weights, type Running } from './stack.js';

type InferAnswer = {
  model_version: string;
  outputs: Array<{ data: number[] }>;
};

const W = new Map<number, NamedTensor[]>([
  [1, weights(FRAUD_MLP, 21)],
  [2, weights(FRAUD_MLP, 21, 40)],
]);

const MANIFEST = 'io.edgefl.registry.ReleaseManifest';

function expectReference(version: number, rows: number[][], data: number[]): void {
  const want = forward(FRAUD_MLP, W.get(version)!, Float32Array.from(rows.flat()), rows.length);
  expect(data).toHaveLength(want.length);
  data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

describeOnBuses('inference: refused releases, hot swap under load, escalations and logs on the bus', () => {
  let stack: Stack;
  let inference: Running;
  let v1Release: ReleaseEvent;

  const servingVersion = async () => {
    const res = await call<InferAnswer>(
      inference.url,
      'POST',
      '/v2/models/fraud/infer',
      inferBody(rowsOf(1, 30, Math.random() * 1e9)),
      acme,
    );
    return res.body.model_version;
  };

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.tenant('acme');
    await stack.tenant('globex');
    await stack.model('acme', 'fraud', FRAUD_MLP);
    await stack.version('fraud', 1, FRAUD_MLP, W.get(1)!);
    await stack.release('acme', 'fraud', 1);
    inference = await stack.inference({ INFERENCE_CACHE_ENTRIES: '0', INFERENCE_POOL_SIZE: '2' });
    await eventually('fraud v1 serves', async () => (await servingVersion()) === '1');
    const releases = await collect(stack, 'edgefl.registry.release.v1');
    v1Release = await eventually('the v1 manifest event', () =>
      releases.values.find((e) => MANIFEST in e.event),
    );
    await releases.close();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Publishes a copy of v1's manifest event with `change` applied to its ReleaseManifest. */
  async function publishForged(change: (m: Record<string, unknown>) => void): Promise<void> {
    const manifest = {
      ...(v1Release.event as unknown as Record<string, Record<string, unknown>>)[MANIFEST]!,
    };
    change(manifest);
    await stack.typed.publish('edgefl.registry.release.v1', [
      {
        value: {
          ...v1Release,
          eventId: randomUUID(),
          event: { [MANIFEST]: manifest },
        } as unknown as ReleaseEvent,
      },
    ]);
  }

  const refused = (reason: string) =>
    metric(
      inference.url,
      new RegExp(
        `edgefl_inference_model_loads_total\\{outcome="refused",reason="${reason}",service="inference"\\} (\\d+)`,
      ),
    );

  it.each([
    [
      'a manifest whose signed version was altered',
      'bad-signature',
      (m: Record<string, unknown>) => {
        const envelope = JSON.parse(m['signedManifest'] as string) as { signed: { version: number } };
        envelope.signed.version = 7;
        m['version'] = 7;
        m['signedManifest'] = JSON.stringify(envelope);
      },
    ],
    [
      'an event whose hash differs from the signed one',
      'mismatch',
      (m: Record<string, unknown>) => {
        const envelope = JSON.parse(m['signedManifest'] as string) as { signed: { version: number } };
        m['version'] = envelope.signed.version + 10;
      },
    ],
    [
      'an event without a signed manifest',
      'no-manifest',
      (m: Record<string, unknown>) => {
        m['version'] = 9;
        m['signedManifest'] = null;
      },
    ],
    [
      'a signed manifest that is no JSON',
      'bad-manifest',
      (m: Record<string, unknown>) => {
        m['version'] = 8;
        m['signedManifest'] = '{"signed":';
      },
    ],
  ])('refuses %s (counted as %s); the serving version keeps serving', async (_what, reason, change) => {
    const before = await refused(reason);
    await publishForged(change);
    await eventually(`a ${reason} refusal`, async () => (await refused(reason)) > before);
    expect(await servingVersion()).toBe('1');
  });

  it('hot-swaps to a new release under continuous load with zero failed requests', async () => {
    let stop = false;
    const seen = new Map<string, number>();
    const failures: string[] = [];
    let answered = 0;
    const client = async (seed: number) => {
      for (let i = 0; !stop; i++) {
        const rows = rowsOf(1 + (i % 3), 30, seed * 100_003 + i);
        try {
          const res = await call<InferAnswer>(
            inference.url,
            'POST',
            '/v2/models/fraud/infer',
            inferBody(rows),
            acme,
          );
          if (res.status !== 200) {
            failures.push(`${res.status} ${JSON.stringify(res.body)}`);
            continue;
          }
          const version = Number(res.body.model_version);
          expectReference(version, rows, res.body.outputs[0]!.data);
          seen.set(res.body.model_version, (seen.get(res.body.model_version) ?? 0) + 1);
          answered++;
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const clients = Array.from({ length: 8 }, (_, i) => client(i + 1));
    await eventually('load on v1', () => (seen.get('1') ?? 0) >= 50);
    await stack.version('fraud', 2, FRAUD_MLP, W.get(2)!);
    await stack.release('acme', 'fraud', 2);
    await eventually('answers from v2', () => (seen.get('2') ?? 0) >= 50, 60_000);
    stop = true;
    await Promise.all(clients);
    expect(failures).toEqual([]);
    expect(answered).toBeGreaterThan(100);
    expect(seen.get('1')).toBeGreaterThan(0);
    expect(
      await metric(
        inference.url,
        /edgefl_inference_model_swaps_total\{model="fraud",service="inference"\} (\d+)/,
      ),
    ).toBe(2);
    // v1 stays loaded (INFERENCE_KEEP_VERSIONS) and addressable
    const pinned = await call<InferAnswer>(
      inference.url,
      'POST',
      '/v2/models/fraud/versions/1/infer',
      inferBody(rowsOf(1, 30, 5)),
      acme,
    );
    expect(pinned.body.model_version).toBe('1');
  });

  it('answers a device escalation on the bus with the same correlation id', async () => {
    await eventually('v2 serves', async () => (await servingVersion()) === '2');
    const replies = await collect(stack, 'edgefl.inference.reply.v1');
    const rows = rowsOf(1, 30, 99);
    const ok = randomUUID();
    const foreign = randomUUID();
    const misshapen = randomUUID();
    const request = (correlationId: string, tenant: string, shape: number[], input: number[]) => ({
      value: {
        eventId: randomUUID(),
        tenant,
        deviceId: 'term-7',
        correlationId,
        modelId: 'fraud',
        edgeModelVersion: 1,
        input,
        shape,
        edgeConfidence: 0.55,
        timestamp: Date.now(),
      },
    });
    await stack.typed.publish('edgefl.inference.request.v1', [
      request(ok, 'acme', [1, 30], rows[0]!),
      request(foreign, 'globex', [1, 30], rows[0]!),
      request(misshapen, 'acme', [1, 29], rows[0]!.slice(1)),
    ]);
    const byId = await eventually('three replies', () => {
      const found = new Map(replies.values.map((r) => [r.correlationId, r]));
      return [ok, foreign, misshapen].every((id) => found.has(id)) ? found : undefined;
    });
    await replies.close();
    const answer = byId.get(ok)!;
    expect(answer).toMatchObject({ tenant: 'acme', deviceId: 'term-7', modelVersion: 2, errorCode: null });
    expectReference(2, rows, answer.prediction);
    expect(answer.confidence).toBeGreaterThanOrEqual(0.5);
    expect(byId.get(foreign)).toMatchObject({ tenant: 'globex', errorCode: 'not-found', prediction: [] });
    expect(byId.get(misshapen)).toMatchObject({ errorCode: 'bad-input' });
    expect(byId.get(misshapen)!.errorMessage).toMatch(/unexpected shape \[1,29\]/);
  });

  it('publishes inference logs to the bus (version, latency, confidence, source CLOUD), batched', async () => {
    const logs = await collect(stack, 'edgefl.inference.log.v1');
    const found = await eventually('cloud inference logs', () => {
      const v2 = logs.values.filter((l) => l.modelVersion === 2 && l.deviceId === 'term-7');
      return v2.length > 0 ? v2 : undefined;
    });
    await logs.close();
    expect(found[0]).toMatchObject({
      tenant: 'acme',
      modelId: 'fraud',
      source: 'CLOUD',
      errorCode: null,
      cacheHit: false,
      arm: null,
    });
    expect(found[0]!.inputHash).toMatch(/^[0-9a-f]{64}$/);
    expect(found[0]!.latencyMs).toBeGreaterThan(0);
    expect(
      await metric(inference.url, /edgefl_inference_logs_published_total\{service="inference"\} (\d+)/),
    ).toBeGreaterThan(100);
  });
});
