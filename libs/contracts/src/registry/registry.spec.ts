import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { announceSkip, startFakeSchemaRegistry, type FakeSchemaRegistry } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSchema } from '../avro.js';
import { ContractError } from '../errors.js';
import { schemaText } from '../schemas.js';
import { ConfluentSchemaRegistry } from './confluent.js';
import { EmbeddedSchemaRegistry } from './embedded.js';
import type { SchemaRegistry } from './port.js';

const telemetry = schemaText('io.edgefl.device.DeviceTelemetry');
const presence = schemaText('io.edgefl.device.DevicePresence');
const withField = (schema: string, field: object) => {
  const json = JSON.parse(schema) as { fields: object[] };
  return JSON.stringify({ ...json, fields: [...json.fields, field] });
};

/** The contract every SchemaRegistry adapter passes. `subjectPrefix` keeps runs apart on a shared real registry. */
function registryContract(name: string, open: () => Promise<SchemaRegistry>, subjectPrefix = 'test') {
  describe(`SchemaRegistry contract: ${name}`, () => {
    let registry: SchemaRegistry;
    const run = `${subjectPrefix}-${process.pid}-${Date.now()}`;
    beforeAll(async () => {
      registry = await open();
    });
    afterAll(async () => {
      await registry.close();
    });

    it('returns the same id for the same schema, and a global id across subjects', async () => {
      const a = await registry.register(`${run}-a-value`, telemetry);
      expect(await registry.register(`${run}-a-value`, telemetry)).toBe(a);
      expect(await registry.register(`${run}-b-value`, telemetry)).toBe(a);
      const p = await registry.register(`${run}-c-value`, presence);
      expect(p).not.toBe(a);
      expect(parseSchema(await registry.getById(a)).name).toBe('io.edgefl.device.DeviceTelemetry');
      expect(parseSchema(await registry.getById(p)).name).toBe('io.edgefl.device.DevicePresence');
    });

    it('reports the latest schema of a subject, and undefined for an unknown subject', async () => {
      const subject = `${run}-latest-value`;
      expect(await registry.getLatest(subject)).toBeUndefined();
      const v1 = await registry.register(subject, telemetry);
      const evolved = withField(telemetry, { name: 'region', type: ['null', 'string'], default: null });
      const v2 = await registry.register(subject, evolved);
      expect(v2).not.toBe(v1);
      const latest = await registry.getLatest(subject);
      expect(latest?.id).toBe(v2);
      expect(latest?.subject).toBe(subject);
      expect(parseSchema(latest!.schema).isValid({})).toBe(false);
      expect(JSON.parse(latest!.schema).fields.at(-1).name).toBe('region');
    });

    it('refuses a BACKWARD-incompatible schema with INCOMPATIBLE_SCHEMA', async () => {
      const subject = `${run}-compat-value`;
      await registry.register(subject, telemetry);
      const breaking = withField(telemetry, { name: 'region', type: 'string' }); // no default: old data lacks it
      const error = await registry.register(subject, breaking).catch((e: unknown) => e);
      expect(ContractError.is(error, 'INCOMPATIBLE_SCHEMA')).toBe(true);
    });

    it('says UNKNOWN_SCHEMA_ID for an id it does not have, MALFORMED for a schema that is not one', async () => {
      const error = await registry.getById(2_000_000_000).catch((e: unknown) => e);
      expect(ContractError.is(error, 'UNKNOWN_SCHEMA_ID')).toBe(true);
      const bad = await registry
        .register(`${run}-bad-value`, '{"type":"record","name":"X","fields":[{"name":"a","type":"nope"}]}')
        .catch((e: unknown) => e);
      expect(ContractError.is(bad, 'MALFORMED')).toBe(true);
      const notJson = await registry.register(`${run}-bad-value`, '{not json').catch((e: unknown) => e);
      expect(ContractError.is(notJson, 'MALFORMED')).toBe(true);
    });
  });
}

// ---- embedded ----
const dir = mkdtempSync(join(tmpdir(), 'edgefl-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
registryContract(
  'embedded (node:sqlite)',
  async () => new EmbeddedSchemaRegistry(join(dir, 'contract.sqlite')),
);

describe('EmbeddedSchemaRegistry', () => {
  it('keeps ids stable across a reopen of the SQLite file', async () => {
    const file = join(dir, 'reopen.sqlite');
    const first = new EmbeddedSchemaRegistry(file);
    const t = await first.register('edgefl.device.telemetry.v1-value', telemetry);
    const p = await first.register('edgefl.device.presence.v1-value', presence);
    await first.close();
    const again = new EmbeddedSchemaRegistry(file);
    expect(await again.register('edgefl.device.presence.v1-value', presence)).toBe(p);
    expect(await again.register('edgefl.device.telemetry.v1-value', telemetry)).toBe(t);
    expect(JSON.parse(await again.getById(t))).toEqual(JSON.parse(telemetry));
    expect((await again.getLatest('edgefl.device.telemetry.v1-value'))?.version).toBe(1);
    await again.close();
    await again.close(); // idempotent
  });

  it('lets two connections share the file (as two processes would) without duplicating ids', async () => {
    const file = join(dir, 'shared.sqlite');
    const a = new EmbeddedSchemaRegistry(file);
    const b = new EmbeddedSchemaRegistry(file);
    const [x, y] = await Promise.all([a.register('s1-value', telemetry), b.register('s2-value', telemetry)]);
    expect(x).toBe(y);
    const z = await b.register('s3-value', presence);
    expect(await a.getById(z)).toBe(JSON.stringify(JSON.parse(presence)));
    await a.close();
    await b.close();
  });

  it('refuses subjects that are empty or absurdly long', async () => {
    const reg = new EmbeddedSchemaRegistry(join(dir, 'subjects.sqlite'));
    expect(
      ContractError.is(await reg.register('', telemetry).catch((e: unknown) => e), 'INVALID_VALUE'),
    ).toBe(true);
    expect(
      ContractError.is(
        await reg.register('x'.repeat(300), telemetry).catch((e: unknown) => e),
        'INVALID_VALUE',
      ),
    ).toBe(true);
    await reg.close();
  });
});

// ---- Confluent REST API, served by libs/testing's in-process fake ----
// It serves the real API's paths and status codes (404 40401/40402/40403/40408, 409, 422 42201), so the adapter's
// mapping of the real API is exercised here, and the fake Kafka-mode service tests use is checked against the
// client the services use; a real registry runs the same contract below.
let fake: FakeSchemaRegistry | undefined;
registryContract('confluent adapter against the Confluent REST API (libs/testing fake)', async () => {
  fake = await startFakeSchemaRegistry();
  return new ConfluentSchemaRegistry({ host: fake.url, retries: 0 });
});
afterAll(() => fake?.close());

const realUrl = process.env['SCHEMA_REGISTRY_URL'];
if (!realUrl)
  announceSkip(
    'SchemaRegistry contract: real Confluent-compatible registry',
    'SCHEMA_REGISTRY_URL is not set',
  );
describe.skipIf(!realUrl)('real registry', () => {
  registryContract(
    `confluent adapter against ${realUrl}`,
    async () => new ConfluentSchemaRegistry({ host: realUrl! }),
    'edgefl-contract',
  );
});

describe('ConfluentSchemaRegistry', () => {
  it('refuses a host that is not an http(s) URL', () => {
    expect(() => new ConfluentSchemaRegistry({ host: 'localhost:8081' })).toThrow(ContractError);
  });

  it('turns an unreachable registry into a clear error that carries no credentials', async () => {
    const reg = new ConfluentSchemaRegistry({
      host: 'http://127.0.0.1:9',
      auth: { username: 'u', password: 'hunter2-secret' },
      retries: 0,
    });
    const error = (await reg.getById(1).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toMatch(/schema registry getById\(1\) failed/);
    expect(error.message).not.toContain('hunter2-secret');
  });
});
