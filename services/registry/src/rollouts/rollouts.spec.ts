import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Device, GateSpec, HealthReport } from '../storage/records.js';
import { inStage, rolloutBucket, targetingMismatch } from './assignment.js';
import { defaultGates, evaluateGates } from './gates.js';

const device = (extra: Partial<Device> = {}): Device => ({
  id: 'd1',
  tenantId: 't',
  publicKey: '',
  modelId: 'm',
  group: 'eu',
  hardwareClass: 'pos',
  ramBytes: 1024,
  firmware: '2.3.1',
  attributes: {},
  currentVersion: null,
  lastSeenAt: null,
  createdAt: 0,
  revokedAt: null,
  revokeReason: null,
  tokensNotBefore: null,
  ...extra,
});
const anyone = { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] };

describe('rollout assignment', () => {
  it('is deterministic, in [0, 100), and nested across growing stages', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (r, d, a, b) => {
          const bucket = rolloutBucket(r, d);
          expect(bucket).toBe(rolloutBucket(r, d));
          expect(bucket).toBeGreaterThanOrEqual(0);
          expect(bucket).toBeLessThan(100);
          const [low, high] = a <= b ? [a, b] : [b, a];
          if (inStage(bucket, low)) expect(inStage(bucket, high)).toBe(true);
        },
      ),
    );
  });

  it('puts about the stage percentage of devices in a stage, differently per release', () => {
    const ids = Array.from({ length: 20_000 }, (_, i) => `device-${i}`);
    const share = (release: string, p: number) =>
      ids.filter((id) => inStage(rolloutBucket(release, id), p)).length / ids.length;
    expect(share('r1', 10)).toBeGreaterThan(0.09);
    expect(share('r1', 10)).toBeLessThan(0.11);
    expect(share('r1', 1)).toBeGreaterThan(0.007);
    expect(share('r1', 1)).toBeLessThan(0.013);
    const canaries1 = ids.filter((id) => inStage(rolloutBucket('r1', id), 1));
    const canaries2 = new Set(ids.filter((id) => inStage(rolloutBucket('r2', id), 1)));
    expect(canaries1.filter((id) => canaries2.has(id)).length).toBeLessThan(canaries1.length / 4);
  });

  it('targets by group, hardware class, RAM and firmware range', () => {
    expect(targetingMismatch(device(), anyone)).toBeNull();
    expect(targetingMismatch(device(), { ...anyone, groups: ['us'] })).toMatch(/group/);
    expect(targetingMismatch(device(), { ...anyone, hardwareClasses: ['phone'] })).toMatch(/hardware/);
    expect(targetingMismatch(device(), { ...anyone, minRamBytes: 2048 })).toMatch(/RAM/);
    expect(targetingMismatch(device({ ramBytes: null }), { ...anyone, minRamBytes: 1 })).toMatch(/RAM/);
    expect(targetingMismatch(device(), { ...anyone, firmwareRange: '>=2.1.0 <3.0.0' })).toBeNull();
    expect(
      targetingMismatch(device({ firmware: '3.0.0' }), { ...anyone, firmwareRange: '>=2.1.0 <3.0.0' }),
    ).toMatch(/firmware/);
    expect(
      targetingMismatch(device({ firmware: 'garbage' }), { ...anyone, firmwareRange: '>=2.1.0' }),
    ).toMatch(/firmware/);
  });
});

const gates: GateSpec = defaultGates({ minDevices: 10, minSoakMs: 1000, deviceTimeoutMs: 60_000 });
const healthy: HealthReport = {
  eventId: 'e',
  releaseId: 'r',
  stage: 'canary',
  windowStart: 0,
  windowEnd: 10,
  devicesReporting: 12,
  otaFailureRate: 0.01,
  inferenceErrorRate: 0.001,
  p95LatencyMs: 5,
  accuracy: 0.9,
  meanConfidence: 0.8,
  driftScore: 0.05,
  baselineVersion: null,
  baselineDevicesReporting: null,
  baselineInferenceErrorRate: null,
  baselineP95LatencyMs: null,
  baselineAccuracy: null,
  baselineMeanConfidence: null,
  receivedAt: 10,
};
const release = {
  gates,
  baseline: { p95LatencyMs: 4, accuracy: 0.91, meanConfidence: 0.82 },
  stageStartedAt: 0,
};
const none = { in_progress: 0, succeeded: 0, failed: 0, timed_out: 0 };
const installed = { ...none, succeeded: 1 };

describe('rollout gates', () => {
  it('advances once soaked with enough healthy devices and one successful install', () => {
    expect(evaluateGates({ release, health: healthy, devices: installed, now: 1000 }).decision).toBe(
      'advance',
    );
  });

  it('never advances a stage no device installed, however healthy the reports', () => {
    const v = evaluateGates({ release, health: healthy, devices: { ...none, in_progress: 3 }, now: 5000 });
    expect(v.decision).toBe('wait');
    expect(v.checks.find((c) => c.gate === 'installs')?.status).toBe('wait');
  });

  it('passes the installs gate of a stage that brought no new device on earlier installs only', () => {
    const gate = (devices: typeof none, installedSoFar: number) =>
      evaluateGates({ release, health: healthy, devices, installedSoFar, now: 5000 }).checks.find(
        (c) => c.gate === 'installs',
      )?.status;
    expect(gate(none, 1)).toBe('pass');
    expect(gate(none, 0)).toBe('wait');
    expect(gate({ ...none, in_progress: 1 }, 3)).toBe('wait');
  });

  it('with minDevicesReporting 0 does not wait for a health report', () => {
    const small = { ...release, gates: { ...gates, minDevicesReporting: 0 } };
    expect(evaluateGates({ release: small, health: null, devices: installed, now: 5000 }).decision).toBe(
      'advance',
    );
    expect(evaluateGates({ release: small, health: null, devices: none, now: 5000 }).decision).toBe('wait');
    // a report that arrives is still judged
    expect(
      evaluateGates({ release: small, health: { ...healthy, accuracy: 0.5 }, devices: installed, now: 5000 })
        .decision,
    ).toBe('fail');
  });

  it('waits for soak time, devices and a health report', () => {
    expect(evaluateGates({ release, health: healthy, devices: installed, now: 999 }).decision).toBe('wait');
    expect(
      evaluateGates({ release, health: { ...healthy, devicesReporting: 9 }, devices: installed, now: 5000 })
        .decision,
    ).toBe('wait');
    const v = evaluateGates({ release, health: null, devices: installed, now: 5000 });
    expect(v.decision).toBe('wait');
    expect(v.reason).toMatch(/no health report/);
  });

  it.each([
    ['otaFailureRate', { otaFailureRate: 0.2 }],
    ['inferenceErrorRate', { inferenceErrorRate: 0.05 }],
    ['p95Latency', { p95LatencyMs: 6.1 }],
    ['accuracy', { accuracy: 0.88 }],
    ['meanConfidence', { meanConfidence: 0.7 }],
    ['driftScore', { driftScore: 0.5 }],
  ])('fails on %s, even before the soak ends', (gate, change) => {
    const verdict = evaluateGates({ release, health: { ...healthy, ...change }, devices: none, now: 10 });
    expect(verdict.decision).toBe('fail');
    expect(verdict.checks.find((c) => c.gate === gate)?.status).toBe('fail');
    expect(verdict.reason).toContain(gate);
  });

  it("counts the registry's own OTA failures and timeouts", () => {
    const devices = { in_progress: 0, succeeded: 8, failed: 1, timed_out: 1 };
    const verdict = evaluateGates({ release, health: healthy, devices, now: 5000 });
    expect(verdict.decision).toBe('fail');
    expect(verdict.reason).toMatch(/timed out/);
  });

  it("judges against the window's baseline cohort when the release has no baseline of its own", () => {
    const cohort = {
      ...healthy,
      baselineVersion: 1,
      baselineDevicesReporting: 40,
      baselineP95LatencyMs: 4,
      baselineAccuracy: null,
      baselineMeanConfidence: 0.82,
    };
    const own = { ...release, baseline: null };
    const ok = evaluateGates({ release: own, health: cohort, devices: installed, now: 5000 });
    expect(ok.decision).toBe('advance');
    expect(ok.checks.find((c) => c.gate === 'p95Latency')).toMatchObject({ status: 'pass' });
    expect(ok.checks.find((c) => c.gate === 'accuracy')).toMatchObject({ status: 'skipped' });
    const slow = evaluateGates({
      release: own,
      health: { ...cohort, p95LatencyMs: 6.1 },
      devices: installed,
      now: 5000,
    });
    expect(slow.decision).toBe('fail');
    expect(slow.reason).toMatch(/p95Latency 6\.10 ms \(max 1\.5 × baseline 4\.00/);
    const unsure = evaluateGates({
      release: own,
      health: { ...cohort, meanConfidence: 0.7 },
      devices: installed,
      now: 5000,
    });
    expect(unsure.checks.find((c) => c.gate === 'meanConfidence')).toMatchObject({ status: 'fail' });
    // the release's own baseline wins where it has one: 1.5 × 10 ms allows 6.1 ms
    const mine = { ...release, baseline: { p95LatencyMs: 10, accuracy: null, meanConfidence: null } };
    const verdict = evaluateGates({
      release: mine,
      health: { ...cohort, p95LatencyMs: 6.1 },
      devices: installed,
      now: 5000,
    });
    expect(verdict.checks.find((c) => c.gate === 'p95Latency')).toMatchObject({ status: 'pass' });
    expect(verdict.checks.find((c) => c.gate === 'meanConfidence')?.detail).toMatch(/baseline − 0\.05/);
  });

  it('skips gates without a baseline and says so', () => {
    const verdict = evaluateGates({
      release: { ...release, baseline: null },
      health: { ...healthy, accuracy: null },
      devices: installed,
      now: 5000,
    });
    expect(verdict.decision).toBe('advance');
    expect(verdict.checks.filter((c) => c.status === 'skipped').map((c) => c.gate)).toEqual(
      expect.arrayContaining(['p95Latency', 'accuracy', 'meanConfidence']),
    );
  });
});
