import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { forward, FRAUD_MLP, type NamedTensor } from '@edgefl/model';
import { describeOnBuses, eventually, expectProblem } from '@edgefl/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PROTO_OPTIONS, PROTO_PATH } from '../src/grpc/grpc.server.js';
import {
  acme,
  call,
  collect,
  globex,
  inferBody,
  inferenceAdmin,
  rowsOf,
  Stack,
  weights,
  type Running,
} from './stack.js';

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, response: Record<string, unknown>) => void,
) => void;
type Client = grpc.Client & Record<string, Unary>;

const W = new Map<number, NamedTensor[]>([
  [1, weights(FRAUD_MLP, 31)],
  [2, weights(FRAUD_MLP, 32)],
]);

describeOnBuses('inference over gRPC (inference.GRPCInferenceService) and experiments (A/B, shadow)', () => {
  let stack: Stack;
  let inference: Running & { grpcPort: number };
  let client: Client;
  const auth = (token: string) => {
    const md = new grpc.Metadata();
    md.set('authorization', token);
    return md;
  };
  const rpc = (method: string, request: unknown, md = auth(acme.authorization)) =>
    new Promise<{ error: grpc.ServiceError | null; response: Record<string, unknown> }>((resolve) =>
      client[method]!(request, md, (error, response) => resolve({ error, response })),
    );

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.tenant('acme');
    await stack.model('acme', 'fraud', FRAUD_MLP);
    await stack.version('fraud', 1, FRAUD_MLP, W.get(1)!);
    await stack.release('acme', 'fraud', 1);
    inference = await stack.inference({ INFERENCE_SHADOW_WINDOW_MS: '200', INFERENCE_CACHE_ENTRIES: '0' });
    await eventually('v1 serves', async () => {
      const r = await call(inference.url, 'GET', '/v2/models/fraud/ready', undefined, acme);
      return r.status === 200;
    });
    await stack.version('fraud', 2, FRAUD_MLP, W.get(2)!);
    await stack.release('acme', 'fraud', 2);
    await eventually('v2 serves', async () => {
      const r = await call<{ versions: string[] }>(inference.url, 'GET', '/v2/models/fraud', undefined, acme);
      return r.body.versions?.includes('2');
    });
    const definition = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      inference: {
        GRPCInferenceService: new (address: string, credentials: grpc.ChannelCredentials) => Client;
      };
    };
    client = new pkg.inference.GRPCInferenceService(
      `127.0.0.1:${inference.grpcPort}`,
      grpc.credentials.createInsecure(),
    );
  });
  afterAll(async () => {
    client?.close();
    await stack?.stop();
  });

  it('answers health, server and model metadata', async () => {
    expect((await rpc('ServerLive', {})).response).toEqual({ live: true });
    expect((await rpc('ServerReady', {})).response).toEqual({ ready: true });
    expect((await rpc('ServerMetadata', {})).response).toMatchObject({ name: 'edgefl-inference' });
    expect((await rpc('ModelReady', { name: 'fraud', version: '' })).response).toEqual({ ready: true });
    const meta = await rpc('ModelMetadata', { name: 'fraud', version: '' });
    expect(meta.response).toMatchObject({
      name: 'fraud',
      versions: ['1', '2'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 30] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1] }],
    });
  });

  it('gives the same outputs as HTTP, equal to the reference forward pass within 1e-5 (contents and raw)', async () => {
    const rows = rowsOf(4, 30, 2024);
    const want = forward(FRAUD_MLP, W.get(2)!, Float32Array.from(rows.flat()), 4);
    const http = await call<{ outputs: Array<{ data: number[] }> }>(
      inference.url,
      'POST',
      '/v2/models/fraud/versions/2/infer',
      inferBody(rows),
      acme,
    );
    const viaContents = await rpc('ModelInfer', {
      model_name: 'fraud',
      model_version: '2',
      id: 'g-1',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 30], contents: { fp32_contents: rows.flat() } }],
    });
    expect(viaContents.error).toBeNull();
    expect(viaContents.response).toMatchObject({ model_name: 'fraud', model_version: '2', id: 'g-1' });
    const out = (
      viaContents.response['outputs'] as Array<{ shape: number[]; contents: { fp32_contents: number[] } }>
    )[0]!;
    expect(out.shape).toEqual([4, 1]);
    const grpcValues = out.contents.fp32_contents;
    expect(grpcValues).toEqual(http.body.outputs[0]!.data);
    grpcValues.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
    const raw = Buffer.from(Float32Array.from(rows.flat()).buffer);
    const viaRaw = await rpc('ModelInfer', {
      model_name: 'fraud',
      model_version: '2',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 30] }],
      raw_input_contents: [raw],
    });
    const rawOut = (viaRaw.response['raw_output_contents'] as Buffer[])[0]!;
    const values = Array.from(new Float32Array(new Uint8Array(rawOut).buffer));
    expect(values).toEqual(grpcValues);
  });

  it.each([
    [
      'wrong shape',
      {
        inputs: [
          {
            name: 'input',
            datatype: 'FP32',
            shape: [1, 29],
            contents: { fp32_contents: new Array(29).fill(0) },
          },
        ],
      },
      grpc.status.INVALID_ARGUMENT,
      /unexpected shape \[1,29\]/,
    ],
    [
      'wrong datatype',
      {
        inputs: [
          {
            name: 'input',
            datatype: 'FP64',
            shape: [1, 30],
            contents: { fp64_contents: new Array(30).fill(0) },
          },
        ],
      },
      grpc.status.INVALID_ARGUMENT,
      /unexpected datatype FP64/,
    ],
    [
      'wrong element count',
      {
        inputs: [
          {
            name: 'input',
            datatype: 'FP32',
            shape: [2, 30],
            contents: { fp32_contents: new Array(30).fill(0) },
          },
        ],
      },
      grpc.status.INVALID_ARGUMENT,
      /30 elements, the shape \[2,30\] needs 60/,
    ],
    [
      'raw bytes of the wrong length',
      {
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 30] }],
        raw_input_contents: [Buffer.alloc(7)],
      },
      grpc.status.INVALID_ARGUMENT,
      /7 raw bytes/,
    ],
    [
      'unknown version',
      { model_version: '9', inputs: [] },
      grpc.status.NOT_FOUND,
      /version 9 of model 'fraud' is not loaded/,
    ],
    ['unknown model', { model_name: 'ghost', inputs: [] }, grpc.status.NOT_FOUND, /unknown model 'ghost'/],
  ])('%s: the right gRPC status and a clear message', async (_name, request, code, message) => {
    const { error } = await rpc('ModelInfer', { model_name: 'fraud', ...request });
    expect(error?.code).toBe(code);
    expect(error?.details).toMatch(message);
  });

  it('refuses a caller without a tenant token (UNAUTHENTICATED) and another tenant (NOT_FOUND)', async () => {
    const body = { model_name: 'fraud', inputs: [] };
    expect((await rpc('ModelInfer', body, new grpc.Metadata())).error?.code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect((await rpc('ModelInfer', body, auth(globex.authorization))).error?.code).toBe(
      grpc.status.NOT_FOUND,
    );
  });

  it('answers malformed protobuf with INVALID_ARGUMENT, and keeps serving', async () => {
    const status = await rawGrpcCall(
      inference.grpcPort,
      '/inference.GRPCInferenceService/ModelInfer',
      // raw_input_contents (field 7, bytes) claiming 4 GiB that never come
      Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    );
    expect(status).toBe(String(grpc.status.INVALID_ARGUMENT));
    expect((await rpc('ServerLive', {})).response).toEqual({ live: true });
  });

  it('splits traffic between arms by a sticky hash of the device id, with per-arm metrics', async () => {
    const set = await call(
      inference.url,
      'PUT',
      '/v1/models/fraud/experiment?tenant=acme',
      {
        ab: {
          arms: [
            { name: 'control', version: 1, weight: 3 },
            { name: 'treatment', version: 2, weight: 1 },
          ],
        },
      },
      inferenceAdmin,
    );
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const arms = new Map<string, string>();
    const counts = { control: 0, treatment: 0 } as Record<string, number>;
    for (let d = 0; d < 400; d++) {
      const res = await call<{ model_version: string; parameters: { arm: string } }>(
        inference.url,
        'POST',
        '/v2/models/fraud/infer',
        inferBody(rowsOf(1, 30, d + 1), { parameters: { device_id: `dev-${d}` } }),
        acme,
      );
      const arm = res.body.parameters.arm;
      expect(res.body.model_version).toBe(arm === 'control' ? '1' : '2');
      arms.set(`dev-${d}`, arm);
      counts[arm]!++;
    }
    // 3:1 over 400 sticky hashes: the binomial sd is ~8.7, so ±50 is far beyond chance
    expect(counts['control']).toBeGreaterThan(250);
    expect(counts['control']).toBeLessThan(350);
    for (const d of [0, 17, 255]) {
      counts[arms.get(`dev-${d}`)!]!++;
      const again = await call<{ parameters: { arm: string } }>(
        inference.url,
        'POST',
        '/v2/models/fraud/infer',
        inferBody(rowsOf(1, 30, 9_999), { parameters: { device_id: `dev-${d}` } }),
        acme,
      );
      expect(again.body.parameters.arm).toBe(arms.get(`dev-${d}`));
    }
    const metrics = await (await fetch(`${inference.url}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(
        `edgefl_inference_ab_requests_total\\{model="fraud",arm="control",service="inference"\\} ${counts['control']}`,
      ),
    );
    expect(metrics).toMatch(
      /edgefl_inference_request_duration_seconds_count\{[^}]*model="fraud",version="2",arm="treatment"/,
    );
    expect(
      (
        await call(
          inference.url,
          'DELETE',
          '/v1/models/fraud/experiment?tenant=acme',
          undefined,
          inferenceAdmin,
        )
      ).status,
    ).toBe(204);
  });

  it('refuses an experiment on versions that are not loaded, another tenant or no admin token', async () => {
    const body = { shadow: { version: 5 } };
    expectProblem(
      await call(inference.url, 'PUT', '/v1/models/fraud/experiment?tenant=acme', body, inferenceAdmin),
      404,
    );
    expectProblem(
      await call(
        inference.url,
        'PUT',
        '/v1/models/fraud/experiment?tenant=globex',
        { shadow: { version: 1 } },
        inferenceAdmin,
      ),
      404,
    );
    expectProblem(
      await call(inference.url, 'PUT', '/v1/models/fraud/experiment?tenant=acme', { shadow: { version: 1 } }),
      401,
    );
    expectProblem(
      await call(
        inference.url,
        'PUT',
        '/v1/models/fraud/experiment?tenant=acme',
        { shadow: { version: 'one' } },
        inferenceAdmin,
      ),
      422,
    );
  });

  it('shadows a candidate: its answers are discarded, disagreements and latency reach the bus as rollout health', async () => {
    const health = await collect(stack, 'edgefl.rollout.health.v1');
    const set = await call(
      inference.url,
      'PUT',
      '/v1/models/fraud/experiment?tenant=acme',
      {
        shadow: { version: 1, releaseId: 'rel-shadow-test' },
      },
      inferenceAdmin,
    );
    expect(set.status, JSON.stringify(set.body)).toBe(200);
    const rows = rowsOf(200, 30, 77);
    let disagreements = 0;
    const v1 = forward(FRAUD_MLP, W.get(1)!, Float32Array.from(rows.flat()), rows.length);
    const v2 = forward(FRAUD_MLP, W.get(2)!, Float32Array.from(rows.flat()), rows.length);
    for (let i = 0; i < rows.length; i++) {
      if (v1[i]! >= 0.5 !== v2[i]! >= 0.5) disagreements++;
      const res = await call<{ model_version: string }>(
        inference.url,
        'POST',
        '/v2/models/fraud/infer',
        inferBody([rows[i]!]),
        acme,
      );
      expect(res.body.model_version).toBe('2');
    }
    expect(disagreements).toBeGreaterThan(0);
    const windows = await eventually('shadow health windows', () => {
      const mine = health.values.filter((h) => h.stage === 'shadow' && h.releaseId === 'rel-shadow-test');
      const samples = mine.length;
      return samples > 0 && mine.reduce((n, h) => n + (h.windowEnd >= h.windowStart ? 1 : 0), 0) === samples
        ? mine
        : undefined;
    });
    await eventually('all 200 shadow samples counted', async () => {
      const text = await (await fetch(`${inference.url}/metrics`)).text();
      const agree = Number(
        /edgefl_inference_shadow_total\{model="fraud",outcome="agree",service="inference"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
      const disagree = Number(
        /edgefl_inference_shadow_total\{model="fraud",outcome="disagree",service="inference"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
      return agree + disagree === 200 && disagree === disagreements;
    });
    await call(inference.url, 'DELETE', '/v1/models/fraud/experiment?tenant=acme', undefined, inferenceAdmin);
    await eventually('the last window', () =>
      health.values.filter((h) => h.stage === 'shadow' && h.releaseId === 'rel-shadow-test').length >=
      windows.length
        ? true
        : undefined,
    );
    await health.close();
    expect(windows[0]).toMatchObject({ tenant: 'acme', modelId: 'fraud', version: 1, stage: 'shadow' });
    expect(windows[0]!.p95LatencyMs).toBeGreaterThan(0);
    expect(windows.some((w) => (w.accuracy ?? 1) < 1)).toBe(true);
  });
});

/**
 * One gRPC call with hand-made bytes over HTTP/2 (a client library would refuse to send them): returns the
 * grpc-status trailer.
 */
async function rawGrpcCall(port: number, path: string, message: Buffer): Promise<string | undefined> {
  const http2 = await import('node:http2');
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    createConnection: () => connect(port, '127.0.0.1'),
  });
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      req.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      });
      req.on('trailers', (trailers) => {
        status = String(trailers['grpc-status']);
      });
      req.on('data', () => undefined);
      req.on('end', () => resolve(status));
      req.on('error', reject);
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt8(0, 0);
      frame.writeUInt32BE(message.length, 1);
      message.copy(frame, 5);
      req.end(frame);
    });
  } finally {
    session.close();
  }
}
