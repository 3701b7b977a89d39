// The fake Confluent schema registry at the REST level: the paths, bodies and error codes of the real API. Its
// test against the contracts' client (ConfluentSchemaRegistry) is libs/contracts/src/registry/registry.spec.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeSchemaRegistry, type FakeSchemaRegistry } from './fake-schema-registry.js';

const record = (fields: object[]) =>
  JSON.stringify({ type: 'record', name: 'Reading', namespace: 'io.test', fields });
const v1 = record([{ name: 'deviceId', type: 'string' }]);
const v2 = record([
  { name: 'deviceId', type: 'string' },
  { name: 'region', type: ['null', 'string'], default: null },
]);
const breaking = record([
  { name: 'deviceId', type: 'string' },
  { name: 'region', type: 'string' },
]);

let registry: FakeSchemaRegistry;
beforeAll(async () => {
  registry = await startFakeSchemaRegistry();
});
afterAll(() => registry.close());

async function rest(method: string, path: string, body?: unknown) {
  const res = await fetch(`${registry.url}${path}`, {
    method,
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  expect(res.headers.get('content-type')).toBe('application/vnd.schemaregistry.v1+json');
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & unknown[] };
}

describe('fake Confluent schema registry', () => {
  it('registers versions under a subject with global ids, and serves subjects, versions and ids', async () => {
    const a = await rest('POST', '/subjects/readings-value/versions', { schema: v1 });
    expect(a).toEqual({ status: 200, body: { id: 1 } });
    expect(
      (await rest('POST', '/subjects/readings-value/versions', { schema: v1, schemaType: 'AVRO' })).body,
    ).toEqual({ id: 1 });
    expect((await rest('POST', '/subjects/other-value/versions', { schema: v1 })).body).toEqual({ id: 1 });
    expect((await rest('POST', '/subjects/readings-value/versions', { schema: v2 })).body).toEqual({ id: 2 });
    expect((await rest('GET', '/subjects')).body).toEqual(['readings-value', 'other-value']);
    expect((await rest('GET', '/subjects/readings-value/versions')).body).toEqual([1, 2]);
    expect((await rest('GET', '/subjects/readings-value/versions/latest')).body).toEqual({
      subject: 'readings-value',
      version: 2,
      id: 2,
      schema: JSON.stringify(JSON.parse(v2)),
    });
    expect((await rest('GET', '/subjects/readings-value/versions/1')).body).toMatchObject({
      version: 1,
      id: 1,
    });
    expect((await rest('GET', '/subjects/readings-value/versions/1/schema')).body).toEqual(JSON.parse(v1));
    expect((await rest('GET', '/schemas/ids/2')).body).toEqual({ schema: JSON.stringify(JSON.parse(v2)) });
    expect((await rest('GET', '/schemas/ids/1/versions')).body).toEqual([
      { subject: 'readings-value', version: 1 },
      { subject: 'other-value', version: 1 },
    ]);
    expect((await rest('POST', '/subjects/readings-value', { schema: v2 })).body).toMatchObject({
      version: 2,
      id: 2,
    });
  });

  it('checks compatibility (BACKWARD by default) and refuses an incompatible version with 409', async () => {
    await rest('POST', '/subjects/compat-value/versions', { schema: v1 });
    expect(
      (await rest('POST', '/compatibility/subjects/compat-value/versions/latest', { schema: v2 })).body,
    ).toEqual({
      is_compatible: true,
    });
    expect(
      (await rest('POST', '/compatibility/subjects/compat-value/versions/1', { schema: breaking })).body,
    ).toEqual({
      is_compatible: false,
    });
    const refused = await rest('POST', '/subjects/compat-value/versions', { schema: breaking });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ error_code: 409 });
    expect((await rest('GET', '/subjects/compat-value/versions')).body).toEqual([1]);
    // NONE on the subject lets it through; the global level stays BACKWARD
    expect((await rest('PUT', '/config/compat-value', { compatibility: 'NONE' })).body).toEqual({
      compatibility: 'NONE',
    });
    expect((await rest('POST', '/subjects/compat-value/versions', { schema: breaking })).status).toBe(200);
    expect((await rest('GET', '/config')).body).toEqual({ compatibilityLevel: 'BACKWARD' });
    expect((await rest('GET', '/config/compat-value')).body).toEqual({ compatibilityLevel: 'NONE' });
  });

  it("answers with the real API's error codes", async () => {
    expect(await rest('GET', '/subjects/nope-value/versions')).toMatchObject({
      status: 404,
      body: { error_code: 40401 },
    });
    await rest('POST', '/subjects/known-value/versions', { schema: v1 });
    expect(await rest('GET', '/subjects/known-value/versions/9')).toMatchObject({
      status: 404,
      body: { error_code: 40402 },
    });
    expect(await rest('GET', '/schemas/ids/999')).toMatchObject({ status: 404, body: { error_code: 40403 } });
    expect(await rest('POST', '/subjects/known-value', { schema: v2 })).toMatchObject({
      status: 404,
      body: { error_code: 40403 },
    });
    expect(await rest('GET', '/config/known-value')).toMatchObject({
      status: 404,
      body: { error_code: 40408 },
    });
    expect((await rest('GET', '/config/known-value?defaultToGlobal=true')).body).toEqual({
      compatibilityLevel: 'BACKWARD',
    });
    const invalid = await rest('POST', '/subjects/known-value/versions', {
      schema: '{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}',
    });
    expect(invalid).toMatchObject({ status: 422, body: { error_code: 42201 } });
    expect(await rest('POST', '/subjects/known-value/versions', { schema: '{not json' })).toMatchObject({
      status: 422,
      body: { error_code: 42201 },
    });
    expect(await rest('PUT', '/config', { compatibility: 'SOMETIMES' })).toMatchObject({
      status: 422,
      body: { error_code: 42203 },
    });
    expect((await rest('DELETE', '/subjects/known-value')).body).toEqual([1]);
    expect(await rest('GET', '/subjects/known-value/versions')).toMatchObject({
      status: 404,
      body: { error_code: 40401 },
    });
    expect(registry.requests).toContain('DELETE /subjects/known-value');
  });
});
