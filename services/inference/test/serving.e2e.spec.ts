import { randomUUID } from 'node:crypto';
import { DIGITS_MLP, forward, FRAUD_MLP, type NamedTensor } from '@edgefl/model';
import { describeOnBuses, eventually, expectProblem } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acme, call, globex, inferBody, rowsOf, Stack, weights, type Running } from './stack.js';

type InferAnswer = {
  model_name: string;
  model_version: string;
  id?: string;
  parameters: { cache_hit: boolean; arm?: string };
  outputs: Array<{ name: string; datatype: string; shape: number[]; data: number[] }>;
};

const W1 = weights(FRAUD_MLP, 11);
const DIGITS = weights(DIGITS_MLP, 5);

function reference(w: NamedTensor[], rows: number[][], spec = FRAUD_MLP): number[] {
  return Array.from(forward(spec, w, Float32Array.from(rows.flat()), rows.length));
}

describeOnBuses('inference serves registry versions over the Open Inference Protocol (HTTP)', () => {
  let stack: Stack;
  let inference: Running;
  const infer = (body: unknown, headers: Record<string, string> = acme, path = '/v2/models/fraud/infer') =>
    call<InferAnswer>(inference.url, 'POST', path, body, headers);

  beforeAll(async () => {
    stack = await Stack.start();
    await stack.tenant('acme');
    await stack.tenant('globex');
    await stack.model('acme', 'fraud', FRAUD_MLP);
    await stack.model('globex', 'digits', DIGITS_MLP);
    await stack.version('fraud', 1, FRAUD_MLP, W1);
    await stack.version('digits', 1, DIGITS_MLP, DIGITS);
    await stack.release('acme', 'fraud', 1);
    await stack.release('globex', 'digits', 1);
    inference = await stack.inference();
    await eventually('fraud is ready', async () => {
      const r = await call(inference.url, 'GET', '/v2/models/fraud/ready', undefined, acme);
      return r.status === 200 ? r : undefined;
    });
    await eventually('digits is ready', async () => {
      const r = await call(inference.url, 'GET', '/v2/models/digits/ready', undefined, globex);
      return r.status === 200 ? r : undefined;
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers the protocol health and server metadata endpoints', async () => {
    expect((await call(inference.url, 'GET', '/v2/health/live')).body).toEqual({ live: true });
    expect((await call(inference.url, 'GET', '/v2/health/ready')).body).toEqual({ ready: true });
    const server = await call(inference.url, 'GET', '/v2');
    expect(server.body).toMatchObject({ name: 'edgefl-inference', extensions: [] });
  });

  it('describes a model: versions, platform, input and output tensors', async () => {
    const meta = await call(inference.url, 'GET', '/v2/models/fraud', undefined, acme);
    expect(meta.status).toBe(200);
    expect(meta.body).toEqual({
      name: 'fraud',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 30] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 1] }],
    });
    const v1 = await call(inference.url, 'GET', '/v2/models/fraud/versions/1', undefined, acme);
    expect(v1.body).toEqual(meta.body);
    expect(
      (await call(inference.url, 'GET', '/v2/models/fraud/versions/1/ready', undefined, acme)).body,
    ).toEqual({
      name: 'fraud',
      ready: true,
    });
  });

  it("answers what libs/model's reference forward pass computes, within 1e-5 (nested and flat data)", async () => {
    const rows = rowsOf(5, 30, 42);
    const expected = reference(W1, rows);
    const nested = await infer(inferBody(rows, { id: 'req-1' }));
    expect(nested.status, JSON.stringify(nested.body)).toBe(200);
    expect(nested.body).toMatchObject({ model_name: 'fraud', model_version: '1', id: 'req-1' });
    const out = nested.body.outputs[0]!;
    expect(out).toMatchObject({ name: 'output', datatype: 'FP32', shape: [5, 1] });
    out.data.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThan(1e-5));
    const flat = await infer({
      inputs: [{ name: 'input', shape: [5, 30], datatype: 'FP32', data: rows.flat() }],
      outputs: [{ name: 'output' }],
    });
    expect(flat.body.outputs[0]!.data).toEqual(out.data);
    // a softmax model of another tenant, through its own token
    const digitsRows = rowsOf(3, 64, 7);
    const digits = await call<InferAnswer>(
      inference.url,
      'POST',
      '/v2/models/digits/versions/1/infer',
      inferBody(digitsRows),
      globex,
    );
    const want = reference(DIGITS, digitsRows, DIGITS_MLP);
    expect(digits.body.outputs[0]!.shape).toEqual([3, 10]);
    digits.body.outputs[0]!.data.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
  });

  it('answers a repeated input from the result cache', async () => {
    const rows = rowsOf(1, 30, 4242);
    const first = await infer(inferBody(rows));
    const second = await infer(inferBody(rows));
    expect(first.body.parameters.cache_hit).toBe(false);
    expect(second.body.parameters.cache_hit).toBe(true);
    expect(second.body.outputs).toEqual(first.body.outputs);
    const metrics = await (await fetch(`${inference.url}/metrics`)).text();
    expect(metrics).toMatch(/edgefl_inference_cache_total\{result="hit",service="inference"\} [1-9]/);
  });

  it("keeps tenants apart: another tenant's model answers exactly like a model that does not exist", async () => {
    const body = inferBody(rowsOf(1, 30, 1));
    const foreign = await infer(body, globex);
    const unknown = await infer(body, globex, '/v2/models/nope/infer');
    expectProblem(foreign, 404);
    expectProblem(unknown, 404);
    expect((foreign.body as unknown as { error: string }).error).toBe("unknown model 'fraud'");
    expect((unknown.body as unknown as { error: string }).error).toBe("unknown model 'nope'");
    expectProblem(await call(inference.url, 'GET', '/v2/models/fraud', undefined, globex), 404);
    expectProblem(await call(inference.url, 'GET', '/v2/models/digits/ready', undefined, acme), 404);
  });

  it('refuses callers without a valid tenant token (401)', async () => {
    const body = inferBody(rowsOf(1, 30, 1));
    const none = await infer(body, {});
    expectProblem(none, 401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expectProblem(await infer(body, { authorization: `Bearer not-${randomUUID()}` }), 401);
  });

  describe('bad input: an OIP error (problem+json with `error`), the right status, and the service keeps serving', () => {
    const cases: Array<[string, unknown, number, RegExp, string?]> = [
      [
        'wrong shape',
        { inputs: [{ name: 'input', shape: [1, 29], datatype: 'FP32', data: new Array(29).fill(0) }] },
        400,
        /unexpected shape \[1,29\], the model expects \[-1,30\]/,
      ],
      [
        'wrong rank',
        { inputs: [{ name: 'input', shape: [30], datatype: 'FP32', data: new Array(30).fill(0) }] },
        400,
        /unexpected shape \[30\]/,
      ],
      [
        'wrong datatype',
        { inputs: [{ name: 'input', shape: [1, 30], datatype: 'INT64', data: new Array(30).fill(0) }] },
        400,
        /unexpected datatype INT64, the model expects FP32/,
      ],
      [
        'unknown datatype',
        { inputs: [{ name: 'input', shape: [1, 30], datatype: 'FLOAT', data: new Array(30).fill(0) }] },
        400,
        /unknown datatype "FLOAT"/,
      ],
      [
        'too few elements',
        { inputs: [{ name: 'input', shape: [2, 30], datatype: 'FP32', data: new Array(59).fill(0) }] },
        400,
        /59 elements, the shape \[2,30\] needs 60/,
      ],
      [
        'too many elements',
        { inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP32', data: new Array(31).fill(0) }] },
        400,
        /more than the 30 elements/,
      ],
      [
        'non-numeric data',
        {
          inputs: [
            { name: 'input', shape: [1, 30], datatype: 'FP32', data: ['a', ...new Array(29).fill(0)] },
          ],
        },
        400,
        /FP32 data must be numbers/,
      ],
      [
        'a value beyond float32',
        {
          inputs: [
            { name: 'input', shape: [1, 30], datatype: 'FP32', data: [1e300, ...new Array(29).fill(0)] },
          ],
        },
        400,
        /value 0 is not a finite number/,
      ],
      [
        'unknown input name',
        { inputs: [{ name: 'x', shape: [1, 30], datatype: 'FP32', data: new Array(30).fill(0) }] },
        400,
        /unexpected input 'x'/,
      ],
      [
        'unknown output name',
        {
          inputs: [{ name: 'input', shape: [1, 30], datatype: 'FP32', data: new Array(30).fill(0) }],
          outputs: [{ name: 'probabilities' }],
        },
        400,
        /unknown output 'probabilities'/,
      ],
      ['no inputs', { inputs: [] }, 400, /inputs must be a non-empty array/],
      ['not an object', [1, 2, 3], 400, /must be a JSON object/],
      ['malformed JSON', '{"inputs": [', 400, /JSON|Unexpected|Expected/],
      [
        'unknown version',
        inferBody(rowsOf(1, 30, 3)),
        404,
        /version 9 of model 'fraud' is not loaded \(loaded: 1\)/,
        '/v2/models/fraud/versions/9/infer',
      ],
      [
        'a version that is no number',
        inferBody(rowsOf(1, 30, 3)),
        404,
        /versions are positive integers/,
        '/v2/models/fraud/versions/latest/infer',
      ],
      ['unknown model', inferBody(rowsOf(1, 30, 3)), 404, /unknown model 'ghost'/, '/v2/models/ghost/infer'],
    ];
    it.each(cases)('%s', async (_name, body, status, message, path) => {
      const res = await infer(body, acme, path);
      const problem = expectProblem(res, status);
      expect(problem['error']).toMatch(message);
      expect(problem.detail).toBe(problem['error']);
    });

    it('an oversized body: 413', async () => {
      const rows = rowsOf(2000, 30, 9);
      const res = await infer(inferBody(rows));
      expectProblem(res, 413);
      expect((res.body as { error?: string }).error).toBeTruthy();
    });

    it('counts the refusals by reason, and still answers', async () => {
      const metrics = await (await fetch(`${inference.url}/metrics`)).text();
      expect(metrics).toMatch(
        /edgefl_inference_errors_total\{protocol="http",reason="bad-input",service="inference"\} [1-9]/,
      );
      const ok = await infer(inferBody(rowsOf(1, 30, 77)));
      expect(ok.status).toBe(200);
    });
  });
});
