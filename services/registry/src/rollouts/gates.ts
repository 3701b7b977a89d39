import type { DeviceRolloutState, GateSpec, HealthReport, Release } from '../storage/records.js';

export type GateStatus = 'pass' | 'fail' | 'wait' | 'skipped';

export interface GateCheck {
  gate: string;
  status: GateStatus;
  detail: string;
}

export interface GateVerdict {
  decision: 'advance' | 'fail' | 'wait';
  checks: GateCheck[];
  /** One line: the failing gates, what is awaited, or "all gates passed". */
  reason: string;
}

export interface GateInput {
  release: Pick<Release, 'gates' | 'baseline' | 'stageStartedAt'>;
  /** The latest health window of the current stage (ended after the stage started), if any. */
  health: HealthReport | null;
  /** The registry's own count of devices in this stage by state (timeouts included). */
  devices: Record<DeviceRolloutState, number>;
  /** Successful installs of this release over all its stages so far (for a stage that brought no new device). */
  installedSoFar?: number;
  now: number;
}

/** The default tolerances of every gate; the device-count, soak and timeout defaults come from the config. */
export const DEFAULT_GATE_TOLERANCES = {
  maxOtaFailureRate: 0.05,
  maxInferenceErrorRate: 0.02,
  maxLatencyRatio: 1.5,
  maxAccuracyDrop: 0.02,
  maxConfidenceDrop: 0.05,
  maxDriftScore: 0.2,
} as const satisfies Partial<GateSpec>;

/** The gates of a release that sets none of its own (REGISTRY_MIN_DEVICES, _MIN_SOAK_MS, _DEVICE_TIMEOUT_MS). */
export function defaultGates(rollout: {
  minDevices: number;
  minSoakMs: number;
  deviceTimeoutMs: number;
}): GateSpec {
  return {
    minDevicesReporting: rollout.minDevices,
    minSoakMs: rollout.minSoakMs,
    ...DEFAULT_GATE_TOLERANCES,
    deviceTimeoutMs: rollout.deviceTimeoutMs,
  };
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

/**
 * The baseline the ML gates compare against, per SLI: the release's own (its body, a `baseline` window, the
 * previous version's metrics) where it has one, else the baseline cohort telemetry measured in the same window
 * (devices of the same groups still on the stable version: `baselineP95LatencyMs`, `baselineAccuracy`,
 * `baselineMeanConfidence` of the health window).
 */
export function baselineOf(
  own: Release['baseline'],
  health: Pick<HealthReport, 'baselineP95LatencyMs' | 'baselineAccuracy' | 'baselineMeanConfidence'> | null,
): NonNullable<Release['baseline']> | null {
  const merged = {
    p95LatencyMs: own?.p95LatencyMs ?? health?.baselineP95LatencyMs ?? null,
    accuracy: own?.accuracy ?? health?.baselineAccuracy ?? null,
    meanConfidence: own?.meanConfidence ?? health?.baselineMeanConfidence ?? null,
  };
  return Object.values(merged).every((x) => x === null) ? null : merged;
}

/**
 * The rollout gates of one stage (pure; the rollout engine persists and acts on the verdict):
 *   min soak time, min devices reporting, OTA failure rate (telemetry's and the registry's own count, which includes
 *   devices that timed out), inference error rate, p95 latency ≤ k × baseline, and the ML health gates — accuracy,
 *   mean confidence and drift no worse than the baseline within tolerances.
 * A stage also needs at least one successful install (a device of the stage reported ACTIVE), and with
 * `minDevicesReporting: 0` no health report. A failing gate fails the stage at once (even before the soak ends);
 * otherwise the stage advances when every gate passes, and waits while a gate lacks data. Gates without a baseline value are skipped and say so.
 */
export function evaluateGates({ release, health, devices, now, installedSoFar = 0 }: GateInput): GateVerdict {
  const g: GateSpec = release.gates;
  const checks: GateCheck[] = [];
  const add = (gate: string, status: GateStatus, detail: string) => checks.push({ gate, status, detail });

  const soaked = now - release.stageStartedAt;
  add(
    'minSoak',
    soaked >= g.minSoakMs ? 'pass' : 'wait',
    `${Math.max(0, soaked)} of ${g.minSoakMs} ms soaked`,
  );

  // a stage proves itself by installs: at least one device new in the stage reported the version ACTIVE; a stage
  // that brought no new device (a small fleet: its devices were all in earlier stages) by the release's installs
  const newInStage = devices.in_progress + devices.succeeded + devices.failed + devices.timed_out;
  if (newInStage === 0 && installedSoFar >= 1) {
    add('installs', 'pass', `no device new in this stage; ${installedSoFar} installed in earlier stages`);
  } else {
    add(
      'installs',
      devices.succeeded >= 1 ? 'pass' : 'wait',
      `${devices.succeeded} devices of this stage installed it (ACTIVE); at least 1 needed`,
    );
  }

  const finished = devices.succeeded + devices.failed + devices.timed_out;
  if (finished > 0 && finished >= Math.max(1, g.minDevicesReporting)) {
    const rate = (devices.failed + devices.timed_out) / finished;
    add(
      'otaFailureRate.registry',
      rate <= g.maxOtaFailureRate ? 'pass' : 'fail',
      `${devices.failed} failed + ${devices.timed_out} timed out of ${finished} finished (${pct(rate)}, max ${pct(g.maxOtaFailureRate)})`,
    );
  } else {
    add(
      'otaFailureRate.registry',
      'skipped',
      `${finished} devices finished; judged from ${Math.max(1, g.minDevicesReporting)}`,
    );
  }

  if (!health && g.minDevicesReporting === 0) {
    // minDevicesReporting 0: the release asks for no health report; the health gates have nothing to judge
    add('minDevicesReporting', 'skipped', 'no health report needed (minDevicesReporting 0)');
  } else if (!health) {
    add('minDevicesReporting', 'wait', 'no health report for this stage yet');
  } else if (health.devicesReporting < g.minDevicesReporting) {
    add(
      'minDevicesReporting',
      'wait',
      `${health.devicesReporting} of ${g.minDevicesReporting} devices reporting`,
    );
  } else {
    add('minDevicesReporting', 'pass', `${health.devicesReporting} devices reporting`);
    const limit = (gate: string, value: number, max: number, show: (x: number) => string = pct) =>
      add(gate, value <= max ? 'pass' : 'fail', `${show(value)} (max ${show(max)})`);
    limit('otaFailureRate', health.otaFailureRate, g.maxOtaFailureRate);
    limit('inferenceErrorRate', health.inferenceErrorRate, g.maxInferenceErrorRate);
    limit('driftScore', health.driftScore, g.maxDriftScore, (x) => x.toFixed(3));
    const base = baselineOf(release.baseline, health);
    if (base?.p95LatencyMs != null && base.p95LatencyMs > 0) {
      const max = g.maxLatencyRatio * base.p95LatencyMs;
      add(
        'p95Latency',
        health.p95LatencyMs <= max ? 'pass' : 'fail',
        `${health.p95LatencyMs.toFixed(2)} ms (max ${g.maxLatencyRatio} × baseline ${base.p95LatencyMs.toFixed(2)} = ${max.toFixed(2)} ms)`,
      );
    } else {
      add('p95Latency', 'skipped', 'no baseline p95 latency');
    }
    if (base?.accuracy != null && health.accuracy !== null) {
      const min = base.accuracy - g.maxAccuracyDrop;
      add(
        'accuracy',
        health.accuracy >= min ? 'pass' : 'fail',
        `${pct(health.accuracy)} (min ${pct(min)} = baseline − ${pct(g.maxAccuracyDrop)})`,
      );
    } else {
      add(
        'accuracy',
        'skipped',
        health.accuracy === null ? 'no labelled feedback in this window' : 'no baseline accuracy',
      );
    }
    if (base?.meanConfidence != null) {
      const min = base.meanConfidence - g.maxConfidenceDrop;
      add(
        'meanConfidence',
        health.meanConfidence >= min ? 'pass' : 'fail',
        `${health.meanConfidence.toFixed(3)} (min ${min.toFixed(3)} = baseline − ${g.maxConfidenceDrop})`,
      );
    } else {
      add('meanConfidence', 'skipped', 'no baseline confidence');
    }
  }

  const failed = checks.filter((c) => c.status === 'fail');
  if (failed.length > 0) {
    return {
      decision: 'fail',
      checks,
      reason: `gate failed: ${failed.map((c) => `${c.gate} ${c.detail}`).join('; ')}`,
    };
  }
  const waiting = checks.filter((c) => c.status === 'wait');
  if (waiting.length > 0) {
    return {
      decision: 'wait',
      checks,
      reason: `waiting: ${waiting.map((c) => `${c.gate} ${c.detail}`).join('; ')}`,
    };
  }
  return { decision: 'advance', checks, reason: 'all gates passed' };
}
