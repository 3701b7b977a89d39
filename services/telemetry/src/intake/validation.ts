import type { DeviceTelemetry, DevicePresence, InferenceLog, OtaStatus } from '@edgefl/contracts';
import { mergeSummaries } from '../analysis/drift.js';
import { AnalysisError } from '../analysis/errors.js';

/** Why an event was dropped: the `reason` label of edgefl_telemetry_events_dropped_total. */
export const DROP_REASONS = [
  'undecodable',
  'duplicate',
  'invalid_value',
  'negative_latency',
  'confidence_out_of_range',
  'future_timestamp',
  'stale_timestamp',
  'unknown_device',
  'unknown_version',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface TimeBounds {
  now: number;
  maxFutureMs: number;
  maxPastMs: number;
}

const finite = Number.isFinite;

function timestampProblem(ts: number, t: TimeBounds): DropReason | null {
  if (!finite(ts)) return 'invalid_value';
  if (ts > t.now + t.maxFutureMs) return 'future_timestamp';
  if (ts < t.now - t.maxPastMs) return 'stale_timestamp';
  return null;
}

/**
 * What Avro cannot rule out in an inference log (checked before anything counts it): a latency that is negative
 * or not a number, a confidence outside [0, 1], a prediction with non-finite values, a timestamp too far in the
 * future or the past.
 */
export function inferenceLogProblem(e: InferenceLog, t: TimeBounds): DropReason | null {
  if (!finite(e.latencyMs)) return 'invalid_value';
  if (e.latencyMs < 0) return 'negative_latency';
  if (!finite(e.confidence) || e.confidence < 0 || e.confidence > 1) return 'confidence_out_of_range';
  if (e.prediction.length === 0 && e.errorCode === null) return 'invalid_value';
  if (!e.prediction.every(finite)) return 'invalid_value';
  if (e.modelVersion < 0) return 'invalid_value';
  return timestampProblem(e.timestamp, t);
}

/** A heartbeat: CPU within 0..100, free RAM within the total, finite feature summaries, a sound timestamp. */
export function heartbeatProblem(e: DeviceTelemetry, t: TimeBounds): DropReason | null {
  if (!finite(e.cpuPercent) || e.cpuPercent < 0 || e.cpuPercent > 100) return 'invalid_value';
  if (e.ramTotalBytes < 0 || e.ramFreeBytes < 0 || e.ramFreeBytes > e.ramTotalBytes) return 'invalid_value';
  if (
    e.batteryPercent !== null &&
    (!finite(e.batteryPercent) || e.batteryPercent < 0 || e.batteryPercent > 100)
  )
    return 'invalid_value';
  if ((e.modelId === null) !== (e.modelVersion === null)) return 'invalid_value';
  if (e.group !== null && (e.group.length === 0 || e.group.length > 64)) return 'invalid_value';
  const names = new Set<string>();
  for (const f of e.featureSummaries ?? []) {
    if (f.name.length === 0 || f.name.length > 64 || names.has(f.name)) return 'invalid_value';
    names.add(f.name);
    try {
      mergeSummaries([f]); // the analysis' own check: finite moments, a positive count, bins matching their edges
    } catch (error) {
      if (error instanceof AnalysisError) return 'invalid_value';
      throw error;
    }
  }
  return timestampProblem(e.timestamp, t);
}

export function presenceProblem(e: DevicePresence, t: TimeBounds): DropReason | null {
  return timestampProblem(e.timestamp, t);
}

/** An OTA status: byte counts not negative, downloaded within the total, a sound timestamp. */
export function otaProblem(e: OtaStatus, t: TimeBounds): DropReason | null {
  if (e.bytesDownloaded < 0 || (e.bytesTotal !== null && e.bytesTotal < 0)) return 'invalid_value';
  if (e.toVersion < 0 || (e.fromVersion !== null && e.fromVersion < 0)) return 'invalid_value';
  return timestampProblem(e.timestamp, t);
}
