import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import { SAMPLES } from '../test/samples.js';
import { ContractError } from './errors.js';
import { RELEASED_SCHEMAS } from './generated/released.js';
import type { RecordName } from './generated/types.js';
import { EmbeddedSchemaRegistry } from './registry/embedded.js';
import { schemaText, SCHEMA_NAMES } from './schemas.js';
import { SingleObjectCodec } from './single-object.js';
import { TopicCodec } from './topic-codec.js';
import { KAFKA_TOPICS, KAFKA_TOPIC_NAMES, valueSubject, type KafkaTopicName } from './topics.js';

describe('codecs', () => {
  let dir: string;
  let registry: EmbeddedSchemaRegistry;
  let codec: TopicCodec;
  const single = new SingleObjectCodec();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'edgefl-contracts-'));
    registry = new EmbeddedSchemaRegistry(join(dir, 'bus.sqlite'));
    codec = new TopicCodec(registry);
  });
  afterAll(async () => {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has a realistic sample for every schema', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...SCHEMA_NAMES].sort());
  });

  describe('Kafka: Confluent wire format', () => {
    it.each(KAFKA_TOPIC_NAMES)('round-trips a %s value', async (topic) => {
      const spec = Object.values(KAFKA_TOPICS).find((t) => t.name === topic)!;
      const value = SAMPLES[spec.schema];
      const bytes = await codec.encode(topic, value as never);
      expect(bytes[0]).toBe(0);
      const id = bytes.readUInt32BE(1);
      expect(id).toBe(await codec.schemaId(topic));
      expect((await registry.getLatest(valueSubject(topic)))?.id).toBe(id);
      expect(await codec.decode(topic, bytes)).toEqual(value);
      // a fresh codec (no caches) decodes it too, and decodeAny names the subject
      const fresh = new TopicCodec(registry);
      expect(await fresh.decode(topic, bytes)).toEqual(value);
      expect(await fresh.decodeAny(bytes)).toEqual({ schemaId: id, subject: valueSubject(topic), value });
    });

    it('names the bad field path on INVALID_VALUE, never the value', async () => {
      const secret = 'top-secret-payload-value';
      const round = structuredClone(SAMPLES['io.edgefl.fl.RoundEvent']);
      const opened = (round.event as { 'io.edgefl.fl.RoundOpened': { quorum: unknown; strategy: unknown } })[
        'io.edgefl.fl.RoundOpened'
      ];
      opened.quorum = secret;
      const error = await codec.encode('edgefl.fl.round.v1', round).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ContractError);
      expect((error as ContractError).code).toBe('INVALID_VALUE');
      expect((error as ContractError).paths.join()).toContain('quorum');
      expect((error as ContractError).message).toContain('quorum');
      expect((error as ContractError).message).not.toContain(secret);

      const telemetry = { ...SAMPLES['io.edgefl.device.DeviceTelemetry'], networkType: 'CARRIER_PIGEON' };
      const e2 = (await codec
        .encode('edgefl.device.telemetry.v1', telemetry as never)
        .catch((e: unknown) => e)) as ContractError;
      expect(e2.code).toBe('INVALID_VALUE');
      expect(e2.paths).toEqual(['networkType']);
      const missing: Record<string, unknown> = { ...SAMPLES['io.edgefl.device.DeviceTelemetry'] };
      delete missing['deviceId'];
      expect(
        await codeOf(ContractError, () => codec.encode('edgefl.device.telemetry.v1', missing as never)),
      ).toBe('INVALID_VALUE');
    });

    it('refuses a string that is not well-formed Unicode (lone surrogate), in a field or a map key', async () => {
      const version = { ...SAMPLES['io.edgefl.model.ModelVersionCreated'], label: 'v\ud800' };
      const error = (await codec
        .encode('edgefl.model.version.v1', version as never)
        .catch((e: unknown) => e)) as ContractError;
      expect(error).toBeInstanceOf(ContractError);
      expect(error.code).toBe('INVALID_VALUE');
      expect(error.paths).toEqual(['label']);
      const metrics = { ...SAMPLES['io.edgefl.model.ModelVersionCreated'], metrics: { '\udc00x': 1 } };
      expect(
        await codeOf(ContractError, () => codec.encode('edgefl.model.version.v1', metrics as never)),
      ).toBe('INVALID_VALUE');
      expect(() => single.encode('io.edgefl.model.ModelVersionCreated', version as never)).toThrow(
        /well-formed Unicode/,
      );
      // well-formed astral characters (a surrogate pair) are fine
      const emoji = { ...SAMPLES['io.edgefl.model.ModelVersionCreated'], label: 'v\u{1F680}' };
      expect(
        await codec.decode(
          'edgefl.model.version.v1',
          await codec.encode('edgefl.model.version.v1', emoji as never),
        ),
      ).toEqual(emoji);
    });

    it('rejects unknown topics, short input, wrong magic, unknown ids, trailing garbage and bad enum indexes', async () => {
      const topic = 'edgefl.ota.status.v1';
      const good = await codec.encode(topic, SAMPLES['io.edgefl.ota.OtaStatus']);
      expect(
        await codeOf(ContractError, () => codec.encode('edgefl.nope.v1' as KafkaTopicName, {} as never)),
      ).toBe('UNKNOWN_TOPIC');
      expect(await codeOf(ContractError, () => codec.decode('edgefl.nope.v1' as KafkaTopicName, good))).toBe(
        'UNKNOWN_TOPIC',
      );
      expect(await codeOf(ContractError, () => codec.decode(topic, good.subarray(0, 3)))).toBe('TRUNCATED');
      expect(await codeOf(ContractError, () => codec.decode(topic, good.subarray(0, good.length - 2)))).toBe(
        'TRUNCATED',
      );
      expect(
        await codeOf(ContractError, () =>
          codec.decode(topic, Buffer.concat([Buffer.from([1]), good.subarray(1)])),
        ),
      ).toBe('BAD_MAGIC');
      const unknownId = Buffer.from(good);
      unknownId.writeUInt32BE(999_999, 1);
      expect(await codeOf(ContractError, () => codec.decode(topic, unknownId))).toBe('UNKNOWN_SCHEMA_ID');
      expect(await codeOf(ContractError, () => codec.decodeAny(unknownId))).toBe('UNKNOWN_SCHEMA_ID');
      expect(
        await codeOf(ContractError, () => codec.decode(topic, Buffer.concat([good, Buffer.from([0x42])]))),
      ).toBe('MALFORMED');
      expect(
        await codeOf(ContractError, () => codec.decode(topic, 'not bytes' as unknown as Uint8Array)),
      ).toBe('MALFORMED');
    });

    it('refuses a record whose writer schema the topic cannot read (INCOMPATIBLE_SCHEMA)', async () => {
      const log = await codec.encode('edgefl.inference.log.v1', SAMPLES['io.edgefl.inference.InferenceLog']);
      expect(await codeOf(ContractError, () => codec.decode('edgefl.device.telemetry.v1', log))).toBe(
        'INCOMPATIBLE_SCHEMA',
      );
    });

    it('decodes data written with an older schema version into the current shape', async () => {
      // An older OtaStatus without viaDelta and bytesTotal (both have defaults in the current schema).
      const current = JSON.parse(schemaText('io.edgefl.ota.OtaStatus')) as {
        fields: Array<{ name: string }>;
      };
      const older = {
        ...current,
        fields: current.fields.filter((f) => f.name !== 'viaDelta' && f.name !== 'bytesTotal'),
      };
      const dir2 = mkdtempSync(join(tmpdir(), 'edgefl-contracts-old-'));
      const reg = new EmbeddedSchemaRegistry(join(dir2, 'bus.sqlite'));
      try {
        const oldId = await reg.register('edgefl.ota.status.v1-value', JSON.stringify(older));
        const { parseSchema } = await import('./avro.js');
        const { viaDelta: _v, bytesTotal: _b, ...oldValue } = SAMPLES['io.edgefl.ota.OtaStatus'];
        const header = Buffer.from([0, 0, 0, 0, 0]);
        header.writeUInt32BE(oldId, 1);
        const bytes = Buffer.concat([header, parseSchema(JSON.stringify(older)).toBuffer(oldValue)]);
        const decoded = await new TopicCodec(reg).decode('edgefl.ota.status.v1', bytes);
        expect(decoded).toEqual({ ...oldValue, viaDelta: false, bytesTotal: null });
      } finally {
        await reg.close();
        rmSync(dir2, { recursive: true, force: true });
      }
    });

    it('reads a release manifest written before signedManifest and floorBucket existed with both null', async () => {
      const released = RELEASED_SCHEMAS.find(
        (r) => r.release === 1 && r.fullName === 'io.edgefl.registry.ReleaseEvent',
      )!;
      const dir2 = mkdtempSync(join(tmpdir(), 'edgefl-contracts-release-v1-'));
      const reg = new EmbeddedSchemaRegistry(join(dir2, 'bus.sqlite'));
      try {
        const oldId = await reg.register('edgefl.registry.release.v1-value', JSON.stringify(released.schema));
        const { parseSchema } = await import('./avro.js');
        const sample = SAMPLES['io.edgefl.registry.ReleaseEvent'];
        if (!('io.edgefl.registry.ReleaseManifest' in sample.event)) throw new Error('sample is a manifest');
        const manifest = sample.event['io.edgefl.registry.ReleaseManifest'];
        const { signedManifest: _s, ...withRollout } = manifest;
        const { floorBucket: _f, ...oldRollout } = manifest.rollout;
        const oldManifest = { ...withRollout, rollout: oldRollout };
        const oldValue = { ...sample, event: { 'io.edgefl.registry.ReleaseManifest': oldManifest } };
        const header = Buffer.from([0, 0, 0, 0, 0]);
        header.writeUInt32BE(oldId, 1);
        const bytes = Buffer.concat([
          header,
          parseSchema(JSON.stringify(released.schema)).toBuffer(oldValue),
        ]);
        const decoded = await new TopicCodec(reg).decode('edgefl.registry.release.v1', bytes);
        expect(decoded).toEqual({
          ...oldValue,
          event: {
            'io.edgefl.registry.ReleaseManifest': {
              ...oldManifest,
              rollout: { ...oldRollout, floorBucket: null },
              signedManifest: null,
            },
          },
        });
        // and the current schema carries the envelope through
        const codec2 = new TopicCodec(reg);
        const again = await codec2.decode(
          'edgefl.registry.release.v1',
          await codec2.encode('edgefl.registry.release.v1', sample),
        );
        expect(again).toEqual(sample);
      } finally {
        await reg.close();
        rmSync(dir2, { recursive: true, force: true });
      }
    });

    it('reads a release-1 heartbeat (before group and featureSummaries) with both null, over Kafka and MQTT', async () => {
      const released = RELEASED_SCHEMAS.find(
        (r) => r.release === 1 && r.fullName === 'io.edgefl.device.DeviceTelemetry',
      )!;
      const { parseSchema } = await import('./avro.js');
      const { schemaFingerprint, SINGLE_OBJECT_MAGIC } = await import('./single-object.js');
      const { fingerprintBytesLE } = await import('./fingerprint.js');
      const v1 = parseSchema(JSON.stringify(released.schema));
      const { group: _g, featureSummaries: _f, ...oldValue } = SAMPLES['io.edgefl.device.DeviceTelemetry'];
      const expected = { ...oldValue, group: null, featureSummaries: null };
      const dir2 = mkdtempSync(join(tmpdir(), 'edgefl-contracts-telemetry-v1-'));
      const reg = new EmbeddedSchemaRegistry(join(dir2, 'bus.sqlite'));
      try {
        const oldId = await reg.register('edgefl.device.telemetry.v1-value', JSON.stringify(released.schema));
        const header = Buffer.from([0, 0, 0, 0, 0]);
        header.writeUInt32BE(oldId, 1);
        const kafka = Buffer.concat([header, v1.toBuffer(oldValue)]);
        expect(await new TopicCodec(reg).decode('edgefl.device.telemetry.v1', kafka)).toEqual(expected);
      } finally {
        await reg.close();
        rmSync(dir2, { recursive: true, force: true });
      }
      const mqtt = Buffer.concat([
        SINGLE_OBJECT_MAGIC,
        fingerprintBytesLE(schemaFingerprint(v1)),
        v1.toBuffer(oldValue),
      ]);
      expect(single.decode(mqtt, 'io.edgefl.device.DeviceTelemetry')).toEqual(expected);
    });

    it('refuses a feature summary with a missing or mistyped field (INVALID_VALUE naming the path)', async () => {
      const sample = SAMPLES['io.edgefl.device.DeviceTelemetry'];
      const [first] = sample.featureSummaries!;
      const bad = { ...sample, featureSummaries: [{ ...first!, count: 'many' }] };
      const error = (await codec
        .encode('edgefl.device.telemetry.v1', bad as never)
        .catch((e: unknown) => e)) as ContractError;
      expect(error).toBeInstanceOf(ContractError);
      expect(error.code).toBe('INVALID_VALUE');
      expect(error.paths?.join(' ')).toContain('count');
    });

    it('random bytes never throw anything but ContractError, with or without a valid header', async () => {
      const ids = new Map<KafkaTopicName, number>();
      for (const topic of KAFKA_TOPIC_NAMES) ids.set(topic, await codec.schemaId(topic));
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...KAFKA_TOPIC_NAMES),
          fc.uint8Array({ maxLength: 96 }),
          fc.boolean(),
          async (topic, body, withHeader) => {
            let bytes = Buffer.from(body);
            if (withHeader) {
              const header = Buffer.alloc(5);
              header.writeUInt32BE(ids.get(topic)!, 1);
              bytes = Buffer.concat([header, bytes]);
            }
            for (const attempt of [() => codec.decode(topic, bytes), () => codec.decodeAny(bytes)]) {
              try {
                await attempt();
              } catch (error) {
                if (!(error instanceof ContractError)) throw error;
              }
            }
          },
        ),
        { numRuns: 400, seed: 20261124 },
      );
    });

    it('refuses a hostile array block count quickly instead of looping (TRUNCATED)', async () => {
      const good = await codec.encode('edgefl.inference.log.v1', SAMPLES['io.edgefl.inference.InferenceLog']);
      // header, then eventId/tenant/deviceId/modelId strings and modelVersion as in `good`, then a huge count.
      const { parseSchema } = await import('./avro.js');
      const prefix = parseSchema(
        '{"type":"record","name":"P","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"},{"name":"c","type":"string"},{"name":"d","type":"string"},{"name":"e","type":"int"}]}',
      );
      const s = SAMPLES['io.edgefl.inference.InferenceLog'];
      const head = prefix.toBuffer({
        a: s.eventId,
        b: s.tenant,
        c: s.deviceId,
        d: s.modelId,
        e: s.modelVersion,
      });
      expect(good.subarray(5, 5 + head.length).equals(head)).toBe(true);
      // 2^40 items (zig-zag 2^41 as a varint): unguarded avsc would fail allocating (RangeError → MALFORMED).
      const hugeCount = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
      const hostile = Buffer.concat([good.subarray(0, 5), head, hugeCount, Buffer.alloc(8)]);
      const error = (await codec
        .decode('edgefl.inference.log.v1', hostile)
        .catch((e: unknown) => e)) as ContractError;
      expect(error).toBeInstanceOf(ContractError);
      expect(error.code).toBe('TRUNCATED');
    });
  });

  describe('MQTT: single-object encoding', () => {
    const records = single.schemaNames;

    it('covers every named record, nested ones included', () => {
      expect(records).toContain('io.edgefl.registry.ReleaseManifest');
      expect(records).toContain('io.edgefl.fl.RoundOpened');
      for (const name of SCHEMA_NAMES) expect(records).toContain(name);
    });

    it.each(SCHEMA_NAMES)('round-trips a %s value', (name) => {
      const bytes = single.encode(name, SAMPLES[name] as never);
      expect([bytes[0], bytes[1]]).toEqual([0xc3, 0x01]);
      expect(bytes.subarray(2, 10).toString('hex')).toBe(single.fingerprintHex(name));
      expect(single.decode(bytes, name)).toEqual(SAMPLES[name]);
      expect(single.decode(bytes)).toEqual({ schemaName: name, value: SAMPLES[name] });
    });

    it('encodes a nested record on its own (the retained release manifest)', () => {
      const manifest = (
        SAMPLES['io.edgefl.registry.ReleaseEvent'].event as { 'io.edgefl.registry.ReleaseManifest': unknown }
      )['io.edgefl.registry.ReleaseManifest'];
      const bytes = single.encode('io.edgefl.registry.ReleaseManifest', manifest as never);
      expect(single.decode(bytes, 'io.edgefl.registry.ReleaseManifest')).toEqual(manifest);
    });

    it('rejects wrong magic, short input, unknown fingerprints, trailing garbage, another record and bad values', () => {
      const good = single.encode(
        'io.edgefl.device.DeviceTelemetry',
        SAMPLES['io.edgefl.device.DeviceTelemetry'],
      );
      expect(codeOf(ContractError, () => single.decode(Buffer.alloc(0)))).toBe('TRUNCATED');
      expect(codeOf(ContractError, () => single.decode(good.subarray(0, 6)))).toBe('TRUNCATED');
      expect(codeOf(ContractError, () => single.decode(good.subarray(0, good.length - 1)))).toBe('TRUNCATED');
      expect(codeOf(ContractError, () => single.decode(Buffer.from([0xc3, 0x02, ...good.subarray(2)])))).toBe(
        'BAD_MAGIC',
      );
      expect(
        codeOf(ContractError, () => single.decode(Buffer.from(JSON.stringify({ hello: 'world' })))),
      ).toBe('BAD_MAGIC');
      const unknown = Buffer.from(good);
      unknown.writeBigUInt64LE(0x0123456789abcdefn, 2);
      expect(codeOf(ContractError, () => single.decode(unknown))).toBe('UNKNOWN_FINGERPRINT');
      expect(codeOf(ContractError, () => single.decode(Buffer.concat([good, Buffer.from([1, 2])])))).toBe(
        'MALFORMED',
      );
      expect(codeOf(ContractError, () => single.decode(good, 'io.edgefl.ota.OtaStatus'))).toBe(
        'INCOMPATIBLE_SCHEMA',
      );
      expect(
        codeOf(ContractError, () =>
          single.encode('io.edgefl.device.DeviceTelemetry', {
            ...SAMPLES['io.edgefl.device.DeviceTelemetry'],
            cpuPercent: 'hot',
          } as never),
        ),
      ).toBe('INVALID_VALUE');
      expect(
        codeOf(ContractError, () => single.encode('io.edgefl.nope.Nope' as RecordName, {} as never)),
      ).toBe('INVALID_VALUE');
    });

    it('decodes payloads of an older schema version into the current shape, refuses unreadable ones', async () => {
      const { parseSchema } = await import('./avro.js');
      const { schemaFingerprint, SINGLE_OBJECT_MAGIC } = await import('./single-object.js');
      const { fingerprintBytesLE } = await import('./fingerprint.js');
      const current = JSON.parse(schemaText('io.edgefl.ota.OtaStatus')) as {
        fields: Array<{ name: string }>;
      };
      const older = {
        ...current,
        fields: current.fields.filter((f) => f.name !== 'viaDelta' && f.name !== 'bytesTotal'),
      };
      // A writer the current schema cannot read: `state` as a plain string instead of the OtaState enum.
      const unreadable = {
        ...current,
        fields: current.fields.map((f) => (f.name === 'state' ? { name: 'state', type: 'string' } : f)),
      };
      const codec = new SingleObjectCodec({ writerSchemas: [older, unreadable] });
      const frame = (schema: object, value: unknown) => {
        const type = parseSchema(JSON.stringify(schema));
        return Buffer.concat([
          SINGLE_OBJECT_MAGIC,
          fingerprintBytesLE(schemaFingerprint(type)),
          type.toBuffer(value),
        ]);
      };
      const { viaDelta: _v, bytesTotal: _b, ...oldValue } = SAMPLES['io.edgefl.ota.OtaStatus'];
      expect(codec.decode(frame(older, oldValue), 'io.edgefl.ota.OtaStatus')).toEqual({
        ...oldValue,
        viaDelta: false,
        bytesTotal: null,
      });
      expect(codeOf(ContractError, () => single.decode(frame(older, oldValue)))).toBe('UNKNOWN_FINGERPRINT');
      expect(
        codeOf(ContractError, () => codec.decode(frame(unreadable, SAMPLES['io.edgefl.ota.OtaStatus']))),
      ).toBe('INCOMPATIBLE_SCHEMA');
    });

    it('random bytes never throw anything but ContractError, with or without a known header', () => {
      const headers = records.map((name) => Buffer.from(`c301${single.fingerprintHex(name)}`, 'hex'));
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 96 }), fc.nat({ max: headers.length }), (body, pick) => {
          const header = headers[pick];
          const bytes = header ? Buffer.concat([header, body]) : Buffer.from(body);
          try {
            single.decode(bytes);
          } catch (error) {
            if (!(error instanceof ContractError)) throw error;
          }
        }),
        { numRuns: 2000, seed: 20261124 },
      );
    });
  });
});
