import { z } from 'zod';
import type { RolloutHealth } from '@edgefl/contracts';

const rate = z.number().min(0).max(1);

/**
 * The SLIs of one rollout-health window and the rules they must keep: the one validation of a window, whether it
 * arrives on the bus (edgefl.rollout.health.v1, already typed by Avro) or is posted to the HTTP API. Numbers are
 * finite, rates within 0..1, the stage a stage name (1-32 characters, like the names of release stages) or
 * "baseline", and the window does not end before it starts.
 */
const slis = {
  stage: z
    .string()
    .min(1)
    .max(32)
    .describe('the stage the window belongs to, or "baseline" for the control group'),
  windowStart: z.number().int().min(0),
  windowEnd: z.number().int().min(0),
  devicesReporting: z.number().int().min(0),
  otaFailureRate: rate,
  inferenceErrorRate: rate,
  p95LatencyMs: z.number().min(0),
  accuracy: rate.nullable(),
  meanConfidence: rate,
  driftScore: z.number().min(0),
  // the baseline cohort's SLIs over the same window (telemetry sends them; null when it has no baseline cohort)
  baselineVersion: z.number().int().min(0).nullable().default(null),
  baselineDevicesReporting: z.number().int().min(0).nullable().default(null),
  baselineInferenceErrorRate: rate.nullable().default(null),
  baselineP95LatencyMs: z.number().min(0).nullable().default(null),
  baselineAccuracy: rate.nullable().default(null),
  baselineMeanConfidence: rate.nullable().default(null),
};

const windowInOrder = (h: { windowStart: number; windowEnd: number }) => h.windowEnd >= h.windowStart;
const windowOrder = { message: 'windowEnd is before windowStart', path: ['windowEnd'] };

/** A window as consumed from the bus: the event's SLIs checked (its identity fields are typed by the codec). */
export const RolloutHealthSlis = z.object(slis).refine(windowInOrder, windowOrder);

/** A window as posted by an operator to /v1/releases/{id}/health: the SLIs, identity fields optional. */
export const RolloutHealthBody = z
  .strictObject({
    eventId: z.uuid().optional(),
    tenant: z.string().optional(),
    modelId: z.string().optional(),
    version: z.number().int().optional(),
    ...slis,
    accuracy: slis.accuracy.default(null),
  })
  .refine(windowInOrder, windowOrder);

/** Why a consumed window cannot be right (NaN, a rate outside 0..1, ...), or null when it is sound. */
export function invalidHealth(health: RolloutHealth): string | null {
  const result = RolloutHealthSlis.safeParse(health);
  if (result.success) return null;
  return result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
}
