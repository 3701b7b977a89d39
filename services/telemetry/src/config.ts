import { isAbsolute, join, resolve } from 'node:path';
import { ConfigError, defineServiceConfig, positiveInt, secret } from '@edgefl/service-kit';
import { z } from 'zod';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * One service-level objective, as TELEMETRY_SLOS lists them (and the API takes them): the SLI (analysis/burn-rate.ts),
 * the share of good events promised over the SLO window, and for LATENCY_P99 the threshold a good request meets.
 * FRESHNESS is tenant-wide (no modelId); the others are per model.
 */
export const SloFields = z.strictObject({
  tenant: z.string().min(1).max(128),
  modelId: z.string().min(1).max(128).nullable().default(null),
  sli: z.enum(['AVAILABILITY', 'LATENCY_P99', 'FRESHNESS', 'OTA_SUCCESS']),
  target: z.number().gt(0).lt(1),
  thresholdMs: z.number().positive().nullable().default(null),
  windowMs: z
    .number()
    .int()
    .min(3_600_000)
    .default(30 * 24 * 3_600_000),
});

/** The rules across fields of an objective (for the config and the API body alike). */
export function checkSlo(
  s: { sli: string; modelId: string | null; thresholdMs: number | null },
  ctx: z.RefinementCtx,
): void {
  if (s.sli === 'LATENCY_P99' && s.thresholdMs === null)
    ctx.addIssue({
      code: 'custom',
      message: 'a LATENCY_P99 objective needs thresholdMs',
      path: ['thresholdMs'],
    });
  if ((s.sli === 'FRESHNESS') !== (s.modelId === null))
    ctx.addIssue({
      code: 'custom',
      message: 'FRESHNESS is tenant-wide (no modelId); the other SLIs need a modelId',
      path: ['modelId'],
    });
}

export const SloSpec = SloFields.superRefine(checkSlo);
export type SloSpec = z.infer<typeof SloSpec>;

const sloList = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'a JSON array of objectives' });
      return z.NEVER;
    }
  })
  .pipe(z.array(SloSpec));

const ms = (fallback: number) => positiveInt(fallback);
const fraction = (fallback: number) => z.coerce.number().min(0).default(fallback);

/** The telemetry's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const telemetryConfig = defineServiceConfig({
  service: 'telemetry',
  defaultPort: 7105,
  ownShape: {
    /** SQLite file of the store when DATABASE_URL is not set (default <data dir>/telemetry.sqlite). */
    TELEMETRY_SQLITE_PATH: z.string().min(1).optional(),
    /** Events stamped further in the future than this are dropped (`future_timestamp`). */
    TELEMETRY_MAX_FUTURE_MS: ms(5 * MINUTE),
    /** Events older than this are dropped (`stale_timestamp`); the inbox keeps ids at least this long. */
    TELEMETRY_MAX_PAST_MS: ms(DAY),
    /** Device states kept in memory (least recently used evicted, re-read from the store). */
    TELEMETRY_MAX_DEVICES: positiveInt(100_000),
    /** Rollup buckets (series × bucket) kept in memory. */
    TELEMETRY_MAX_SERIES: positiveInt(20_000),
    /** Known model versions kept in memory. */
    TELEMETRY_MAX_VERSIONS: positiveInt(10_000),
    /** A device not heard from for this long is silent. */
    TELEMETRY_SILENT_AFTER_MS: ms(5 * MINUTE),
    /** 1-minute rollups are kept this long, 1-hour rollups (and OTAs, alerts) this long. */
    TELEMETRY_RETENTION_MINUTE_MS: ms(2 * DAY),
    TELEMETRY_RETENTION_HOUR_MS: ms(90 * DAY),
    /** Processed event ids are kept this long (at least TELEMETRY_MAX_PAST_MS). */
    TELEMETRY_INBOX_RETENTION_MS: ms(2 * DAY),
    TELEMETRY_MAINTENANCE_INTERVAL_MS: ms(5 * MINUTE),
    /** Records per intake batch (one transaction). */
    TELEMETRY_BATCH_SIZE: positiveInt(500),
    /** Rollout health: how often it is published per live release, and over what window. */
    TELEMETRY_HEALTH_INTERVAL_MS: ms(MINUTE),
    TELEMETRY_HEALTH_WINDOW_MS: ms(10 * MINUTE),
    /** A canary window with fewer inferences than this publishes no health (nothing to judge yet). */
    TELEMETRY_HEALTH_MIN_INFERENCES: positiveInt(1),
    /** Drift: cadence, the recent window, the baseline window (from a version's first data), alert threshold. */
    TELEMETRY_DRIFT_INTERVAL_MS: ms(5 * MINUTE),
    TELEMETRY_DRIFT_WINDOW_MS: ms(HOUR),
    TELEMETRY_DRIFT_BASELINE_MS: ms(HOUR),
    TELEMETRY_DRIFT_PSI_THRESHOLD: fraction(0.2),
    TELEMETRY_DRIFT_MIN_SAMPLES: positiveInt(200),
    /** SLOs: cadence of the burn-rate evaluation and objectives from config (JSON array, see README). */
    TELEMETRY_SLO_INTERVAL_MS: ms(MINUTE),
    TELEMETRY_SLOS: sloList.default([]),
    /**
     * Bearer token of the query and SLO API. Secret: never echoed or logged. Unset (or empty): generated at first
     * boot into <data dir>/telemetry-admin-token (0600).
     */
    TELEMETRY_ADMIN_TOKEN: secret(
      z.preprocess(
        (value) => (value === '' ? undefined : value),
        z
          .string()
          .min(16, 'at least 16 characters')
          .max(512)
          .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
          .optional(),
      ),
    ),
  },
  mapOwn: (env, base) => {
    if (env.TELEMETRY_INBOX_RETENTION_MS < env.TELEMETRY_MAX_PAST_MS)
      throw new ConfigError('telemetry', [
        'TELEMETRY_INBOX_RETENTION_MS: must be at least TELEMETRY_MAX_PAST_MS (a replay older than the inbox would count twice)',
      ]);
    if (env.TELEMETRY_RETENTION_HOUR_MS < env.TELEMETRY_RETENTION_MINUTE_MS)
      throw new ConfigError('telemetry', [
        'TELEMETRY_RETENTION_HOUR_MS: must be at least TELEMETRY_RETENTION_MINUTE_MS',
      ]);
    const path = env.TELEMETRY_SQLITE_PATH;
    return {
      sqlitePath:
        path === undefined ? join(base.dataDir, 'telemetry.sqlite') : isAbsolute(path) ? path : resolve(path),
      intake: {
        maxFutureMs: env.TELEMETRY_MAX_FUTURE_MS,
        maxPastMs: env.TELEMETRY_MAX_PAST_MS,
        batchSize: env.TELEMETRY_BATCH_SIZE,
      },
      limits: {
        devices: env.TELEMETRY_MAX_DEVICES,
        series: env.TELEMETRY_MAX_SERIES,
        versions: env.TELEMETRY_MAX_VERSIONS,
      },
      silentAfterMs: env.TELEMETRY_SILENT_AFTER_MS,
      retention: {
        minuteRollupsMs: env.TELEMETRY_RETENTION_MINUTE_MS,
        hourRollupsMs: env.TELEMETRY_RETENTION_HOUR_MS,
        inboxMs: env.TELEMETRY_INBOX_RETENTION_MS,
        intervalMs: env.TELEMETRY_MAINTENANCE_INTERVAL_MS,
      },
      health: {
        intervalMs: env.TELEMETRY_HEALTH_INTERVAL_MS,
        windowMs: env.TELEMETRY_HEALTH_WINDOW_MS,
        minInferences: env.TELEMETRY_HEALTH_MIN_INFERENCES,
      },
      drift: {
        intervalMs: env.TELEMETRY_DRIFT_INTERVAL_MS,
        windowMs: env.TELEMETRY_DRIFT_WINDOW_MS,
        baselineMs: env.TELEMETRY_DRIFT_BASELINE_MS,
        psiThreshold: env.TELEMETRY_DRIFT_PSI_THRESHOLD,
        minSamples: env.TELEMETRY_DRIFT_MIN_SAMPLES,
      },
      slo: { intervalMs: env.TELEMETRY_SLO_INTERVAL_MS, objectives: env.TELEMETRY_SLOS },
      adminToken: env.TELEMETRY_ADMIN_TOKEN as string | undefined,
    };
  },
});

export type TelemetryConfig = ReturnType<typeof telemetryConfig.load>;
export type TelemetryOwnConfig = TelemetryConfig['own'];
