import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import {
  DEMO_SUMMARY_FORMAT,
  type DemoSummary,
  type Histogram,
  type ReleaseFigures,
  type RoundFigures,
} from '../demo/summary.js';
import { UsageError } from '../usage-error.js';

// The zod form of DemoSummary (tools/cli/src/demo/summary.ts). `satisfies z.ZodType<…>` makes tsc fail when the
// two drift apart. Unknown fields are dropped, not refused: a later v1 writer may add fields (backward compatible).
const fraction = z.number().min(0).max(1);
const count = z.int().min(0);
const isoTime = z.iso.datetime({ offset: true });

const histogram = z
  .object({
    boundsMs: z.array(z.number().min(0)),
    counts: z.array(count),
    p50: z.number().min(0).nullable(),
    p99: z.number().min(0).nullable(),
  })
  .superRefine((h, ctx) => {
    for (let i = 1; i < h.boundsMs.length; i++) {
      if (!(h.boundsMs[i]! > h.boundsMs[i - 1]!)) {
        ctx.addIssue({
          code: 'custom',
          path: ['boundsMs', i],
          message: 'bucket bounds must increase strictly',
        });
        return;
      }
    }
    if (h.counts.length !== h.boundsMs.length && h.counts.length !== h.boundsMs.length + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['counts'],
        message: `expected ${h.boundsMs.length} or ${h.boundsMs.length + 1} counts for ${h.boundsMs.length} bounds (got ${h.counts.length})`,
      });
    }
  }) satisfies z.ZodType<Histogram>;

const round = z.object({
  round: z.int().min(1),
  roundId: z.string(),
  participants: count,
  rejected: count,
  accuracy: fraction,
  rocAuc: fraction.nullable(),
  baseline: z.object({ accuracy: fraction, rocAuc: fraction.nullable() }).optional(),
  outliers: count.optional(),
  epsilonSpent: z.number().min(0).nullable(),
  wallSeconds: z.number().min(0),
  version: z.int().min(1).nullable(),
  bytesPerDevice: z.object({ up: z.number().min(0), down: z.number().min(0) }),
}) satisfies z.ZodType<RoundFigures>;

const release = z.object({
  version: z.int().min(1),
  outcome: z.enum(['completed', 'halted', 'rolled-back', 'in-progress']),
  stages: z.array(
    z.object({
      stage: z.int().min(0),
      percent: z.number().min(0).max(100),
      enteredAt: isoTime,
      devicesActive: count,
    }),
  ),
}) satisfies z.ZodType<ReleaseFigures>;

export const demoSummarySchema = z
  .object({
    format: z.literal(DEMO_SUMMARY_FORMAT),
    startedAt: isoTime,
    finishedAt: isoTime,
    wallSeconds: z.number().min(0),
    settings: z.object({
      devices: z.int().min(1),
      rounds: z.int().min(0),
      dataset: z.string().min(1),
      label: z.string().nullable(),
      task: z.enum(['binary', 'multiclass']),
      attackers: z.number().min(0).lt(1),
      attack: z.string().nullable(),
      attackerIds: z.array(z.string()).optional(),
      robust: z.string().nullable(),
      defence: z
        .object({
          rule: z.string().min(1),
          params: z.record(z.string(), z.number()),
          maxNorm: z.number().positive().nullable(),
          outlierZ: z.number().positive(),
          bucketSize: z.int().min(2).nullable(),
        })
        .optional(),
      secureAggregation: z.boolean(),
      dpEpsilon: z.number().positive().nullable(),
      dpDelta: z.number().gt(0).lt(1).nullable(),
      dirichletAlpha: z.number().positive(),
      seed: z.int(),
    }),
    baseline: z.object({ accuracy: fraction, rocAuc: fraction.nullable() }),
    rounds: z.array(round),
    rejectedUpdates: z.array(
      z.object({
        round: z.int().min(1),
        deviceId: z.string(),
        reason: z.string(),
        detail: z.string().nullable().optional(),
        attacker: z.boolean().optional(),
      }),
    ),
    releases: z.array(release),
    ota: z.object({
      deltaDownloads: count,
      fullDownloads: count,
      deltaBytes: count,
      fullBytes: count,
      fullEquivalentBytes: count,
    }),
    latency: z.object({ edge: histogram, cloud: histogram }),
    fleetVersionMix: z.record(z.string(), count),
  })
  .superRefine((s, ctx) => {
    for (let i = 1; i < s.rounds.length; i++) {
      if (!(s.rounds[i]!.round > s.rounds[i - 1]!.round)) {
        ctx.addIssue({
          code: 'custom',
          path: ['rounds', i, 'round'],
          message: 'round numbers must increase',
        });
        return;
      }
    }
  }) satisfies z.ZodType<DemoSummary>;

/** `rounds[3].accuracy` from zod's path. */
function fieldName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const key of path) {
    if (typeof key === 'number') name += `[${key}]`;
    else name += name === '' ? String(key) : `.${String(key)}`;
  }
  return name || '(top level)';
}

/**
 * Validates a parsed summary. Throws a UsageError naming the file, the first bad field and what was expected
 * (and how many other fields are bad).
 */
export function parseSummary(value: unknown, source: string): DemoSummary {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${source} is not an edgefl demo summary: expected a JSON object`);
  }
  const format = (value as { format?: unknown }).format;
  if (format !== DEMO_SUMMARY_FORMAT) {
    throw new UsageError(
      `${source} is not an edgefl demo summary: format is ${JSON.stringify(format) ?? 'missing'}, expected "${DEMO_SUMMARY_FORMAT}"`,
    );
  }
  const result = demoSummarySchema.safeParse(value);
  if (result.success) return result.data;
  const [first, ...rest] = result.error.issues;
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length > 1 ? 's' : ''})` : '';
  throw new UsageError(`${source}: ${fieldName(first!.path)}: ${first!.message}${more}`);
}

/** Reads and validates a demo summary file (`npx edgefl demo --json`): a UsageError says what is wrong. */
export async function readSummary(path: string): Promise<DemoSummary> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : String(code);
    throw new UsageError(`cannot read the summary ${path}: ${why}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not JSON: ${(error as Error).message}`);
  }
  return parseSummary(value, path);
}
