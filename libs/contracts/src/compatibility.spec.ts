import { describe, expect, it } from 'vitest';
import { checkAgainstReleases, isBackwardCompatible } from './compatibility.js';
import { RELEASED_SCHEMAS, RELEASES } from './generated/released.js';
import { SCHEMAS, type JsonValue } from './generated/schemas.js';
import type { SchemaName } from './generated/types.js';

type RecordJson = { fields: Array<Record<string, JsonValue>> } & Record<string, JsonValue>;
const clone = (name: SchemaName) => structuredClone(SCHEMAS[name]) as unknown as RecordJson;
const withCurrent = (name: SchemaName, schema: RecordJson) => ({
  ...SCHEMAS,
  [name]: schema as unknown as JsonValue,
});

describe('schema evolution (BACKWARD)', () => {
  // Schemas added since the last release snapshot; the next snapshot (schemas/released/v<N+1>) takes them in.
  const ADDED_SINCE_RELEASE_1 = [
    'io.edgefl.device.DeviceLifecycle',
    'io.edgefl.telemetry.DriftAlert',
    'io.edgefl.telemetry.SloAlert',
  ];

  it('keeps release snapshots: release 1 is still current, and only the named schemas were added since', () => {
    expect(RELEASES).toContain(1);
    const v1 = RELEASED_SCHEMAS.filter((r) => r.release === 1).map((r) => r.fullName);
    const current = Object.keys(SCHEMAS);
    expect(v1.filter((name) => !current.includes(name))).toEqual([]);
    expect(current.filter((name) => !v1.includes(name)).sort()).toEqual(ADDED_SINCE_RELEASE_1);
  });

  it('every current schema reads what every released version wrote', () => {
    expect(checkAgainstReleases()).toEqual([]);
  });

  it('catches an incompatible change: a new field without a default', () => {
    const changed = clone('io.edgefl.ota.OtaStatus');
    changed.fields.push({ name: 'region', type: 'string' });
    const problems = checkAgainstReleases(withCurrent('io.edgefl.ota.OtaStatus', changed));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ release: 1, schema: 'io.edgefl.ota.OtaStatus' });
  });

  it('catches a removed enum symbol without a default, a changed type and a removed schema', () => {
    const noSymbol = clone('io.edgefl.inference.InferenceLog');
    const source = noSymbol.fields.find((f) => f['name'] === 'source')!;
    source['type'] = { type: 'enum', name: 'InferenceSource', symbols: ['EDGE', 'CLOUD'] };
    expect(checkAgainstReleases(withCurrent('io.edgefl.inference.InferenceLog', noSymbol))).toHaveLength(1);

    const retyped = clone('io.edgefl.fl.FlUpdate');
    retyped.fields.find((f) => f['name'] === 'sampleCount')!['type'] = 'string';
    expect(checkAgainstReleases(withCurrent('io.edgefl.fl.FlUpdate', retyped))).toHaveLength(1);

    const { ['io.edgefl.bus.DeadLetter']: _removed, ...rest } = SCHEMAS;
    expect(checkAgainstReleases(rest)).toEqual([
      { release: 1, schema: 'io.edgefl.bus.DeadLetter', why: 'schema was removed' },
    ]);
  });

  it('accepts compatible changes: a new field with a default, a removed field, a widened number', () => {
    const added = clone('io.edgefl.ota.OtaStatus');
    added.fields.push({ name: 'region', type: ['null', 'string'], default: null });
    expect(checkAgainstReleases(withCurrent('io.edgefl.ota.OtaStatus', added))).toEqual([]);
    const removed = clone('io.edgefl.ota.OtaStatus');
    removed.fields = removed.fields.filter((f) => f['name'] !== 'viaDelta');
    expect(checkAgainstReleases(withCurrent('io.edgefl.ota.OtaStatus', removed))).toEqual([]);
    const widened = clone('io.edgefl.fl.FlUpdate');
    widened.fields.find((f) => f['name'] === 'sampleCount')!['type'] = 'long';
    expect(isBackwardCompatible(widened as unknown as JsonValue, SCHEMAS['io.edgefl.fl.FlUpdate'])).toEqual({
      ok: true,
    });
  });
});
