import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyDelta,
  buildOnnx,
  DIGITS_MLP,
  FRAUD_MLP,
  float32ToBytes,
  initWeights,
  onnxLayout,
  sha256Hex,
  type NamedTensor,
} from '@edgefl/model';
import { describeOnBuses, expectProblem } from '@edgefl/testing';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  admin,
  call,
  ENGINES,
  engineAvailable,
  engineEnv,
  startRegistry,
  type TestRegistry,
} from './helpers.js';

/** Weights of the fraud MLP, seeded; `nudge` changes a few values (what one FL round does). */
function weights(seed: number, nudge = 0): NamedTensor[] {
  const w = initWeights(FRAUD_MLP, seed);
  for (let i = 0; i < nudge; i++) w[0]!.data[i * 7] = w[0]!.data[i * 7]! + 0.001 * (i + 1);
  return w;
}
const onnx = (w: NamedTensor[]) => Buffer.from(buildOnnx(FRAUD_MLP, w));

async function upload(
  url: string,
  model: string,
  bytes: Uint8Array,
  query = '',
  type = 'application/octet-stream',
) {
  const res = await fetch(`${url}/v1/models/${model}/versions${query}`, {
    method: 'POST',
    headers: { ...admin, 'content-type': type },
    body: bytes,
  });
  const text = await res.text();
  return {
    status: res.status,
    type: res.headers.get('content-type') ?? '',
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

describeOnBuses.each(ENGINES)('registry models, versions, artifacts and deltas (%s)', (engine) => {
  if (!engineAvailable(engine)) return it.skip('needs PostgreSQL');
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  let url: string;
  const v1 = onnx(weights(1));
  const v2 = onnx(weights(1, 20));
  const v3 = onnx(weights(1, 40));

  beforeAll(async () => {
    const selected = await engineEnv(engine);
    cleanup = selected.cleanup;
    registry = await startRegistry({ REGISTRY_MAX_UPLOAD_BYTES: String(200_000), ...selected.env });
    url = registry.url;
    await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    const created = await call(url, 'POST', '/v1/tenants/acme/models', {
      id: 'fraud',
      name: 'Fraud',
      spec: FRAUD_MLP,
      deltaWindow: 1,
    });
    expect(created.status).toBe(201);
  });
  afterAll(async () => {
    await registry?.stop();
    await cleanup?.();
  });

  it('runs on the selected metadata engine', async () => {
    const ready = await call<{ info: { store: { engine: string } } }>(url, 'GET', '/health/ready');
    expect(ready.body.info.store.engine).toBe(engine);
  });

  it('refuses a model with a bad spec', async () => {
    const res = await call(url, 'POST', '/v1/tenants/acme/models', {
      id: 'bad',
      name: 'Bad',
      spec: { family: 'mlp', inputs: -1 },
    });
    expectProblem(res, 422, 'https://edgefl.dev/problems/unprocessable');
  });

  it('stores an uploaded ONNX version; of two concurrent creates of one version exactly one wins', async () => {
    const [a, b] = await Promise.all([
      upload(url, 'fraud', v1, '?version=1&label=first'),
      upload(url, 'fraud', v1, '?version=1&label=second'),
    ]);
    expect([a.status, b.status].sort()).toEqual([201, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.type).toMatch(/problem\+json/);
    const got = await call(url, 'GET', '/v1/models/fraud/versions/1');
    expect(got.body).toMatchObject({
      version: 1,
      sha256: sha256Hex(v1),
      sizeBytes: v1.length,
      status: 'active',
      origin: 'UPLOAD',
    });
    expect(got.body).not.toHaveProperty('wrappedKey');
  });

  it('refuses malformed uploads, wrong tensor shapes, unknown media types and bodies over the limit', async () => {
    expect((await upload(url, 'fraud', Buffer.from('definitely not onnx'))).status).toBe(422);
    const digits = Buffer.from(buildOnnx(DIGITS_MLP, initWeights(DIGITS_MLP, 3)));
    const wrong = await upload(url, 'fraud', digits);
    expect(wrong.status).toBe(422);
    expect(String(wrong.body['detail'])).toMatch(/tensor|expected/);
    expect((await upload(url, 'fraud', v2, '', 'text/plain')).status).toBe(415);
    expect((await upload(url, 'fraud', Buffer.alloc(300_000, 1))).status).toBe(413);
    expect(
      (await upload(url, 'fraud', Buffer.alloc(12), '', 'application/vnd.edgefl.weights+f32')).status,
    ).toBe(422);
    expect((await upload(url, 'nosuchmodel', v2)).status).toBe(404);
    expect((await upload(url, 'fraud', v2, '?version=0')).status).toBe(400);
    const badJson = await call(url, 'POST', '/v1/models/fraud/versions', {
      weights: [{ name: 'dense0.weight', dims: [30, 64], data: 'AAAA' }],
    });
    expect(badJson.status).toBe(422);
    const huge = await call(url, 'POST', '/v1/models/fraud/versions', {
      weights: [{ name: 'x', dims: [1], data: 'A'.repeat(2_000_000) }],
    });
    expectProblem(huge, 413);
  });

  it('creates versions from raw weights and from JSON weights, with deltas to the previous ones', async () => {
    const f32 = Buffer.concat(weights(1, 20).map((t) => float32ToBytes(t.data)));
    const second = await upload(
      url,
      'fraud',
      f32,
      '?label=from-weights',
      'application/vnd.edgefl.weights+f32',
    );
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({ version: 2, parentVersion: 1, sha256: sha256Hex(v2) });
    const json = await call(url, 'POST', '/v1/models/fraud/versions', {
      label: 'json',
      metrics: { accuracy: 0.91 },
      weights: weights(1, 40).map((t) => ({
        name: t.name,
        dims: t.dims,
        data: Buffer.from(float32ToBytes(t.data)).toString('base64'),
      })),
    });
    expect(json.status).toBe(201);
    expect(json.body).toMatchObject({ version: 3, sha256: sha256Hex(v3), metrics: { accuracy: 0.91 } });
  });

  it('serves the artifact with ETag, conditional GET and resumable ranges', async () => {
    const full = await fetch(`${url}/v1/models/fraud/versions/1/artifact`);
    expect(full.status).toBe(200);
    const etag = full.headers.get('etag')!;
    expect(etag).toBe(`"${sha256Hex(v1)}"`);
    expect(full.headers.get('accept-ranges')).toBe('bytes');
    expect(Buffer.from(await full.arrayBuffer())).toEqual(v1);

    const first = await fetch(`${url}/v1/models/fraud/versions/1/artifact`, {
      headers: { range: 'bytes=0-999' },
    });
    expect(first.status).toBe(206);
    expect(first.headers.get('content-range')).toBe(`bytes 0-999/${v1.length}`);
    const head = Buffer.from(await first.arrayBuffer());
    const rest = await fetch(`${url}/v1/models/fraud/versions/1/artifact`, {
      headers: { range: 'bytes=1000-', 'if-range': etag },
    });
    expect(rest.status).toBe(206);
    expect(Buffer.concat([head, Buffer.from(await rest.arrayBuffer())])).toEqual(v1);

    const stale = await fetch(`${url}/v1/models/fraud/versions/1/artifact`, {
      headers: { range: 'bytes=1000-', 'if-range': '"other"' },
    });
    expect(stale.status).toBe(200);
    await stale.arrayBuffer();
    expect(
      (await fetch(`${url}/v1/models/fraud/versions/1/artifact`, { headers: { 'if-none-match': etag } }))
        .status,
    ).toBe(304);
    const multi = await fetch(`${url}/v1/models/fraud/versions/1/artifact`, {
      headers: { range: 'bytes=0-1,4-5' },
    });
    expect(multi.status).toBe(200); // several ranges: the whole representation, not multipart and not 416
    expect(multi.headers.get('content-range')).toBeNull();
    expect(Buffer.from(await multi.arrayBuffer())).toEqual(v1);
    for (const range of ['bytes=999999999-', 'bytes=5-1', 'bytes=0-1,x', 'bytes=x']) {
      const bad = await fetch(`${url}/v1/models/fraud/versions/1/artifact`, { headers: { range } });
      expect(bad.status, range).toBe(416);
      expect(bad.headers.get('content-type')).toMatch(/problem\+json/);
      await bad.arrayBuffer();
    }
    expect((await fetch(`${url}/v1/models/fraud/versions/99/artifact`)).status).toBe(404);
  });

  it('plans a direct delta, a chain, or the full download, and the deltas rebuild the target', async () => {
    const direct = await call<{ kind: string; steps: Array<{ url: string; sha256: string }> }>(
      url,
      'GET',
      '/v1/models/fraud/versions/2/delta?from=1',
    );
    expect(direct.body.kind).toBe('direct');
    const chain = await call<{
      kind: string;
      steps: Array<{ url: string; fromVersion: number; toVersion: number }>;
      totalBytes: number;
      fullBytes: number;
    }>(url, 'GET', '/v1/models/fraud/versions/3/delta?from=1');
    expect(chain.body.kind).toBe('chain');
    expect(chain.body.steps.map((s) => [s.fromVersion, s.toVersion])).toEqual([
      [1, 2],
      [2, 3],
    ]);
    expect(chain.body.totalBytes).toBeLessThan(chain.body.fullBytes);
    let bytes: Uint8Array = v1;
    for (const step of chain.body.steps) {
      const res = await fetch(`${url}${step.url}`);
      expect(res.status).toBe(200);
      bytes = applyDelta(bytes, new Uint8Array(await res.arrayBuffer()));
    }
    expect(Buffer.from(bytes)).toEqual(v3);
    expect((await call(url, 'GET', '/v1/models/fraud/versions/1/delta?from=3')).body).toMatchObject({
      kind: 'full',
    });
    expect((await call(url, 'GET', '/v1/models/fraud/versions/3/delta?from=42')).status).toBe(404);
    expect((await call(url, 'GET', '/v1/models/fraud/versions/3/delta')).status).toBe(400);
  });

  it('keeps artifacts encrypted at rest and never serves a tampered one', async () => {
    const dir = join(registry.dataDir, 'registry-artifacts', 'acme', 'fraud');
    const files = await readdir(dir);
    const name = files.find((f) => f.startsWith('v1-'))!;
    const stored = await readFile(join(dir, name));
    expect(stored.includes(v1.subarray(200, 264))).toBe(false);
    const flipped = Buffer.from(stored);
    flipped[50] = flipped[50]! ^ 0xff;
    await writeFile(join(dir, name), flipped);
    const res = await fetch(`${url}/v1/models/fraud/versions/1/artifact`);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    await writeFile(join(dir, name), stored);
    expect((await fetch(`${url}/v1/models/fraud/versions/1/artifact`, { method: 'HEAD' })).status).toBe(200);
  });

  it('skips, logs and counts a delta from a damaged stored artifact; the upload still succeeds', async () => {
    await call(url, 'POST', '/v1/tenants/acme/models', {
      id: 'dmg',
      name: 'd',
      spec: FRAUD_MLP,
      deltaWindow: 3,
    });
    expect((await upload(url, 'dmg', onnx(weights(9)))).status).toBe(201);
    expect((await upload(url, 'dmg', onnx(weights(9, 5)))).status).toBe(201);
    const dir = join(registry.dataDir, 'registry-artifacts', 'acme', 'dmg');
    const name = (await readdir(dir)).find((f) => f.startsWith('v1-'))!;
    const stored = await readFile(join(dir, name));
    const flipped = Buffer.from(stored);
    flipped[60] = flipped[60]! ^ 0x01;
    await writeFile(join(dir, name), flipped);
    const v3 = await upload(url, 'dmg', onnx(weights(9, 10)));
    expect(v3.status).toBe(201);
    // the delta from the healthy v2 exists, the one from the damaged v1 does not
    expect((await fetch(`${url}/v1/models/dmg/deltas/2/3`, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(`${url}/v1/models/dmg/deltas/1/3`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${url}/v1/models/dmg/versions/1/artifact`)).status).toBe(500);
    expect(
      registry.logs.records().some((r) => r['event'] === 'registry.artifact.damaged' && r['version'] === 1),
    ).toBe(true);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(/^edgefl_registry_damaged_artifacts_total(\{[^}]*\})? [1-9]/m);
    await writeFile(join(dir, name), stored);
  });

  it('takes version numbers in paths in canonical decimal only, and sends no X-Powered-By', async () => {
    const ok = await fetch(`${url}/v1/models/fraud/versions/1`, { headers: admin });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('x-powered-by')).toBeNull();
    await ok.arrayBuffer();
    for (const v of ['0x1', '1e0', '%201', '01', '1.0', '+1'])
      expect((await call(url, 'GET', `/v1/models/fraud/versions/${v}`)).status, v).toBe(400);
  });

  it('answers body-parser refusals in the edgefl problem family', async () => {
    const res = await fetch(`${url}/v1/tenants`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{"id":',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { type: string }).type).toBe('https://edgefl.dev/problems/bad-request');
    // authentication comes first: an anonymous caller learns nothing from the parser
    for (const body of ['{"id":', Buffer.from([0x7b, 0xff, 0x7d])]) {
      const anonymous = await fetch(`${url}/v1/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(anonymous.status).toBe(401);
      await anonymous.arrayBuffer();
    }
  });

  it('deprecates versions', async () => {
    const res = await call(url, 'POST', '/v1/models/fraud/versions/1/deprecate');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'deprecated' });
    expect((await call(url, 'POST', '/v1/models/fraud/versions/77/deprecate')).status).toBe(404);
  });
});

/** The bytes of `model` with every float32 raw_data initializer re-tagged as packed float_data (the same payload). */
function asFloatData(model: Buffer): Buffer {
  const out = Buffer.from(model);
  for (const t of onnxLayout(model).tensors) {
    let length = t.count * 4;
    let varint = 1;
    while (length >= 0x80) {
      length >>>= 7;
      varint++;
    }
    const tag = t.offset - varint - 1;
    expect(out[tag]).toBe(0x4a); // raw_data, LEN
    out[tag] = 0x22; // float_data, LEN (packed)
  }
  return out;
}

/** An ONNX model with an opset, an input and an output but no node (what protobuf tools can write). */
function nodeless(): Buffer {
  const root = protobuf.Root.fromJSON({
    nested: {
      M: {
        fields: {
          irVersion: { type: 'int64', id: 1 },
          graph: { type: 'G', id: 7 },
          opsetImport: { rule: 'repeated', type: 'O', id: 8 },
        },
      },
      O: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
      G: {
        fields: {
          name: { type: 'string', id: 2 },
          input: { rule: 'repeated', type: 'V', id: 11 },
          output: { rule: 'repeated', type: 'V', id: 12 },
        },
      },
      V: { fields: { name: { type: 'string', id: 1 } } },
    },
  });
  const M = root.lookupType('M');
  return Buffer.from(
    M.encode(
      M.fromObject({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: { name: 'g', input: [{ name: 'x' }], output: [{ name: 'x' }] },
      }),
    ).finish(),
  );
}

describeOnBuses('registry signs only runnable models', () => {
  let registry: TestRegistry;
  let url: string;

  beforeAll(async () => {
    registry = await startRegistry();
    url = registry.url;
    await call(url, 'POST', '/v1/tenants', { id: 'acme', name: 'Acme' });
    await call(url, 'POST', '/v1/tenants/acme/models', { id: 'free', name: 'no spec' });
    await call(url, 'POST', '/v1/tenants/acme/models', { id: 'fraud', name: 'Fraud', spec: FRAUD_MLP });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('refuses with 422 and the reason a model without opset, without nodes, or with an unknown operator', async () => {
    const noOpset = await upload(url, 'free', Buffer.from([0x08, 0x08, 0x3a, 0x00]));
    expectProblem(noOpset, 422);
    expect(String(noOpset.body['detail'])).toMatch(/opset/);
    const empty = await upload(url, 'free', nodeless());
    expectProblem(empty, 422);
    expect(String(empty.body['detail'])).toMatch(/no nodes/);
    const good = onnx(weights(5));
    const at = good.indexOf('Sigmoid');
    expect(at).toBeGreaterThan(0);
    const unknownOp = Buffer.from(good);
    unknownOp.write('Sigmoix', at, 'latin1');
    for (const model of ['free', 'fraud']) {
      const res = await upload(url, model, unknownOp);
      expectProblem(res, 422);
      expect(String(res.body['detail'])).toMatch(/onnxruntime cannot run this model/);
    }
    expect((await call<unknown[]>(url, 'GET', '/v1/models/free/versions')).body).toEqual([]);
    expect((await call<unknown[]>(url, 'GET', '/v1/models/fraud/versions')).body).toEqual([]);
  });

  it('accepts weights stored as float_data as well as raw_data', async () => {
    const raw = onnx(weights(6));
    const floatData = asFloatData(raw);
    expect(floatData.equals(raw)).toBe(false);
    const res = await upload(url, 'fraud', floatData);
    expect(res.status).toBe(201);
    // stored in raw_data form (what deltas are built over): the same model, byte for byte
    expect(res.body['sha256']).toBe(sha256Hex(raw));
    expect((await upload(url, 'fraud', onnx(weights(7)))).status).toBe(201);
  });
});
