import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, type Clock } from '@edgefl/service-kit';
import type { TelemetryConfig } from '../config.js';
import type { DeviceRecord, OtaRecord, TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import {
  emptyRollup,
  HOUR_MS,
  mergeInto,
  RESOLUTIONS,
  slisOf,
  type InferenceSlis,
  type Resolution,
  type Rollup,
} from './rollup.js';

/** A cohort: devices of one model on some versions in some groups (none: every group). */
export interface CohortQuery {
  tenant: string;
  modelId?: string | undefined;
  versions?: readonly number[] | undefined;
  groups?: readonly string[] | undefined;
  from: number;
  to: number;
}

export interface OtaSlis {
  finished: number;
  active: number;
  failed: number;
  rolledBack: number;
  inProgress: number;
  /** ACTIVE ÷ finished; null when none finished. */
  successRate: number | null;
  timeToActiveMs: { p50: number; p95: number; max: number } | null;
  /** Mean bytes downloaded per successful OTA, by path (delta vs full artifact). */
  bytesPerOta: { delta: number | null; full: number | null; deltaCount: number; fullCount: number };
}

export interface DeviceView extends DeviceRecord {
  state: 'fresh' | 'silent';
  silentForMs: number | null;
}

function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * SLI queries over sliding windows: rollups merged per series or cohort (HDR histograms merge exactly), device
 * freshness, OTA outcomes, the version mix. A window is aligned to its resolution: 1-minute buckets while the window
 * fits the minute retention and is at most 6 h, 1-hour buckets beyond.
 */
@Injectable()
export class SliService {
  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) private readonly config: TelemetryConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  now(): number {
    return this.clock.now();
  }

  resolutionFor(windowMs: number): Resolution {
    return windowMs <= Math.min(6 * HOUR_MS, this.config.own.retention.minuteRollupsMs) ? 'm' : 'h';
  }

  /** Buckets whose start lies in [from, to), at the resolution the window's length calls for. */
  private range(from: number, to: number): { res: Resolution; from: number; to: number } {
    const res = this.resolutionFor(to - from);
    const size = RESOLUTIONS[res];
    return { res, from: Math.floor(from / size) * size, to: Math.max(to, from + 1) };
  }

  /** The merged rollup of a cohort over [from, to). */
  async cohort(q: CohortQuery): Promise<Rollup> {
    const r = this.range(q.from, q.to);
    const rows = await this.store.queryRollups({ ...q, ...r });
    const total = emptyRollup();
    for (const row of rows) mergeInto(total, row.rollup);
    return total;
  }

  /** SLIs per series (model × version × group) of a tenant over the last `windowMs`, and over all of them. */
  async series(q: {
    tenant: string;
    modelId?: string | undefined;
    version?: number | undefined;
    group?: string | undefined;
    windowMs: number;
  }): Promise<{
    windowStart: number;
    windowEnd: number;
    resolution: Resolution;
    total: InferenceSlis;
    series: Array<{ modelId: string; version: number; group: string; slis: InferenceSlis }>;
  }> {
    const now = this.now();
    const r = this.range(now - q.windowMs, now + 1);
    const rows = await this.store.queryRollups({
      res: r.res,
      tenant: q.tenant,
      modelId: q.modelId,
      versions: q.version === undefined ? undefined : [q.version],
      groups: q.group === undefined ? undefined : [q.group],
      from: r.from,
      to: r.to,
    });
    const per = new Map<string, { modelId: string; version: number; group: string; rollup: Rollup }>();
    const total = emptyRollup();
    for (const row of rows) {
      const k = `${row.modelId}\n${row.version}\n${row.group}`;
      let s = per.get(k);
      if (!s) {
        s = { modelId: row.modelId, version: row.version, group: row.group, rollup: emptyRollup() };
        per.set(k, s);
      }
      mergeInto(s.rollup, row.rollup);
      mergeInto(total, row.rollup);
    }
    return {
      windowStart: r.from,
      windowEnd: now,
      resolution: r.res,
      total: slisOf(total),
      series: [...per.values()]
        .sort(
          (a, b) =>
            a.modelId.localeCompare(b.modelId) || a.version - b.version || a.group.localeCompare(b.group),
        )
        .map((s) => ({ modelId: s.modelId, version: s.version, group: s.group, slis: slisOf(s.rollup) })),
    };
  }

  /** OTA outcomes of the OTAs updated in [from, to). */
  async ota(q: {
    tenant: string;
    modelId?: string | undefined;
    releaseId?: string | undefined;
    toVersion?: number | undefined;
    groups?: readonly string[] | undefined;
    from: number;
    to: number;
  }): Promise<OtaSlis> {
    return otaSlisOf(await this.store.queryOta(q));
  }

  /** Devices of a tenant, fresh or silent (not heard from within TELEMETRY_SILENT_AFTER_MS, or OFFLINE). */
  async devices(q: {
    tenant: string;
    modelId?: string | undefined;
    group?: string | undefined;
    state?: 'fresh' | 'silent' | undefined;
    limit?: number | undefined;
  }): Promise<DeviceView[]> {
    const rows = await this.store.listDevices({
      tenant: q.tenant,
      modelId: q.modelId,
      group: q.group,
      limit: q.limit,
    });
    const views = rows
      .filter((d) => d.registeredAt !== null && d.revokedAt === null)
      .map((d) => this.view(d));
    return q.state === undefined ? views : views.filter((d) => d.state === q.state);
  }

  view(d: DeviceRecord): DeviceView {
    const now = this.now();
    const silent =
      d.lastSeenAt === null || now - d.lastSeenAt > this.config.own.silentAfterMs || d.presence === 'OFFLINE';
    return {
      ...d,
      state: silent ? 'silent' : 'fresh',
      silentForMs: d.lastSeenAt === null ? null : Math.max(0, now - d.lastSeenAt),
    };
  }
}

export function otaSlisOf(rows: readonly OtaRecord[]): OtaSlis {
  let active = 0;
  let failed = 0;
  let rolledBack = 0;
  let inProgress = 0;
  const times: number[] = [];
  const delta: number[] = [];
  const full: number[] = [];
  for (const o of rows) {
    if (o.state === 'ACTIVE') {
      active++;
      if (o.finishedAt !== null) times.push(o.finishedAt - o.startedAt);
      (o.viaDelta ? delta : full).push(o.bytesDownloaded);
    } else if (o.state === 'FAILED') failed++;
    else if (o.state === 'ROLLED_BACK') rolledBack++;
    else inProgress++;
  }
  const finished = active + failed + rolledBack;
  times.sort((a, b) => a - b);
  const mean = (xs: number[]) => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    finished,
    active,
    failed,
    rolledBack,
    inProgress,
    successRate: finished > 0 ? active / finished : null,
    timeToActiveMs:
      times.length > 0
        ? { p50: quantile(times, 0.5), p95: quantile(times, 0.95), max: times[times.length - 1]! }
        : null,
    bytesPerOta: { delta: mean(delta), full: mean(full), deltaCount: delta.length, fullCount: full.length },
  };
}
