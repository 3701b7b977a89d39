import type { RolloutHealth } from '@edgefl/contracts';
import { describe, expect, it } from 'vitest';
import { invalidHealth, RolloutHealthBody } from './rollout-health.js';

const window: RolloutHealth = {
  eventId: '6f1c2a4e-8d6b-4a57-9b0e-3c1d2e4f5a6b',
  tenant: 'acme',
  releaseId: 'rel-1',
  modelId: 'fraud',
  version: 2,
  stage: 'canary',
  windowStart: 1_000,
  windowEnd: 2_000,
  devicesReporting: 12,
  otaFailureRate: 0.01,
  inferenceErrorRate: 0,
  p95LatencyMs: 4.5,
  accuracy: null,
  meanConfidence: 0.8,
  driftScore: 0.05,
  baselineVersion: null,
  baselineDevicesReporting: null,
  baselineInferenceErrorRate: null,
  baselineP95LatencyMs: null,
  baselineAccuracy: null,
  baselineMeanConfidence: null,
};

describe('the one rollout-health check (bus and HTTP)', () => {
  it('accepts a sound window and names what is wrong with a bad one', () => {
    expect(invalidHealth(window)).toBeNull();
    expect(invalidHealth({ ...window, otaFailureRate: Number.NaN })).toMatch(/^otaFailureRate: /);
    expect(invalidHealth({ ...window, inferenceErrorRate: 7 })).toMatch(/^inferenceErrorRate: /);
    expect(invalidHealth({ ...window, p95LatencyMs: Number.POSITIVE_INFINITY })).toMatch(/^p95LatencyMs: /);
    expect(invalidHealth({ ...window, devicesReporting: 1.5 })).toMatch(/^devicesReporting: /);
    expect(invalidHealth({ ...window, stage: 'x'.repeat(33) })).toMatch(/^stage: /);
    expect(invalidHealth({ ...window, stage: '' })).toMatch(/^stage: /);
    expect(invalidHealth({ ...window, windowEnd: 999 })).toBe('windowEnd: windowEnd is before windowStart');
  });

  it('reads a posted window with the same rules: accuracy defaults to null, unknown members are refused', () => {
    const {
      eventId: _e,
      tenant: _t,
      releaseId: _r,
      modelId: _m,
      version: _v,
      accuracy: _a,
      ...slis
    } = window;
    expect(RolloutHealthBody.parse(slis)).toEqual({ ...slis, accuracy: null });
    expect(RolloutHealthBody.safeParse({ ...slis, stage: 'x'.repeat(33) }).success).toBe(false);
    expect(RolloutHealthBody.safeParse({ ...slis, windowStart: 3_000 }).success).toBe(false);
    expect(RolloutHealthBody.safeParse({ ...slis, releaseId: 'rel-2' }).success).toBe(false);
  });
});
