import { Inject, Injectable } from '@nestjs/common';
import { METRICS_REGISTRY } from '@edgefl/service-kit';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { TelemetryConfig } from '../config.js';
import type { TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import { DROP_REASONS, type DropReason } from '../intake/validation.js';

/** What intake consumes, the `kind` label of the intake metrics. */
export const EVENT_KINDS = [
  'heartbeat',
  'presence',
  'inference',
  'ota',
  'release',
  'round',
  'lifecycle',
  'version',
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** The in-memory state kinds that are capped and evicted (`kind` of edgefl_telemetry_series*). */
export const SERIES_KINDS = ['device', 'rollup', 'version'] as const;
export type SeriesKind = (typeof SERIES_KINDS)[number];

/** Group label values past this many distinct groups per tenant are reported as `_other` (bounded cardinality). */
export const MAX_GROUP_LABELS = 50;
export const OTHER_GROUP = '_other';

/**
 * The telemetry's Prometheus metrics (names fixed: infra/prometheus rules use them). No device id is ever a label;
 * label values are tenants, models, versions, device groups (capped per tenant) and fixed enums.
 */
@Injectable()
export class TelemetryMetrics {
  readonly inference: Counter<'tenant' | 'model' | 'version' | 'group' | 'outcome'>;
  readonly latency: Histogram<'tenant' | 'model' | 'version' | 'group'>;
  readonly escalations: Counter<'tenant' | 'model' | 'version' | 'group'>;
  readonly ota: Counter<'tenant' | 'model' | 'outcome'>;
  readonly ingested: Counter<'kind'>;
  readonly dropped: Counter<'reason'>;
  readonly evicted: Counter<'kind'>;
  readonly published: Counter<'topic'>;
  readonly driftEvaluations: Counter;
  private readonly groupLabels = new Map<string, Set<string>>();
  private readonly seriesSizes = new Map<SeriesKind, () => number>();

  constructor(
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(TELEMETRY_STORE) store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) config: TelemetryConfig,
  ) {
    const registers = [registry];
    this.inference = new Counter({
      name: 'edgefl_fleet_inference_total',
      help: 'Inferences logged by the fleet, by outcome (ok or error).',
      labelNames: ['tenant', 'model', 'version', 'group', 'outcome'],
      registers,
    });
    this.latency = new Histogram({
      name: 'edgefl_fleet_inference_latency_seconds',
      help: 'Inference latency the fleet logged.',
      labelNames: ['tenant', 'model', 'version', 'group'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.escalations = new Counter({
      name: 'edgefl_fleet_escalations_total',
      help: 'Inferences escalated to the cloud tier.',
      labelNames: ['tenant', 'model', 'version', 'group'],
      registers,
    });
    this.ota = new Counter({
      name: 'edgefl_fleet_ota_total',
      help: 'OTA updates that finished, by outcome (active, failed, rolled_back).',
      labelNames: ['tenant', 'model', 'outcome'],
      registers,
    });
    this.ingested = new Counter({
      name: 'edgefl_telemetry_events_ingested_total',
      help: 'Events taken in (counted once: replays and duplicates are not), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.dropped = new Counter({
      name: 'edgefl_telemetry_events_dropped_total',
      help: 'Events dropped before they could count, by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of DROP_REASONS) this.dropped.inc({ reason }, 0);
    this.evicted = new Counter({
      name: 'edgefl_telemetry_series_evicted_total',
      help: 'In-memory states evicted at their cap (re-read from the store when needed), by kind.',
      labelNames: ['kind'],
      registers,
    });
    this.published = new Counter({
      name: 'edgefl_telemetry_published_total',
      help: 'Events telemetry published (rollout health, drift and SLO alerts), by topic.',
      labelNames: ['topic'],
      registers,
    });
    this.driftEvaluations = new Counter({
      name: 'edgefl_telemetry_drift_evaluations_total',
      help: 'Drift evaluations run (every active model version each time).',
      registers,
    });
    const sizes = this.seriesSizes;
    new Gauge({
      name: 'edgefl_telemetry_series',
      help: 'In-memory states held, by kind (each capped by configuration).',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, size] of sizes) this.set({ kind }, size());
      },
    });
    const silentAfterMs = config.own.silentAfterMs;
    const groupLabel = (tenant: string, group: string) => this.groupLabel(tenant, group);
    new Gauge({
      name: 'edgefl_fleet_devices',
      help: 'Registered devices by freshness: fresh (heard from within TELEMETRY_SILENT_AFTER_MS) or silent.',
      labelNames: ['tenant', 'group', 'state'],
      registers,
      async collect() {
        this.reset();
        const rows = await store.deviceFreshness(Date.now() - silentAfterMs);
        const sums = new Map<string, { tenant: string; group: string; fresh: number; silent: number }>();
        for (const r of rows) {
          const group = groupLabel(r.tenant, r.group);
          const key = `${r.tenant}\n${group}`;
          const s = sums.get(key) ?? { tenant: r.tenant, group, fresh: 0, silent: 0 };
          s.fresh += r.fresh;
          s.silent += r.silent;
          sums.set(key, s);
        }
        for (const s of sums.values()) {
          this.set({ tenant: s.tenant, group: s.group, state: 'fresh' }, s.fresh);
          this.set({ tenant: s.tenant, group: s.group, state: 'silent' }, s.silent);
        }
      },
    });
    new Gauge({
      name: 'edgefl_fleet_dp_epsilon_spent',
      help: 'Differential-privacy ε spent per model: the sum over its rounds.',
      labelNames: ['tenant', 'model'],
      registers,
      async collect() {
        this.reset();
        for (const r of await store.privacySpent())
          this.set({ tenant: r.tenant, model: r.modelId }, r.epsilon);
      },
    });
  }

  /** Registers the size of a capped in-memory state for edgefl_telemetry_series. */
  trackSeries(kind: SeriesKind, size: () => number): void {
    this.seriesSizes.set(kind, size);
  }

  /** The group as a label value: the first MAX_GROUP_LABELS groups of a tenant as they are, later ones `_other`. */
  groupLabel(tenant: string, group: string): string {
    let groups = this.groupLabels.get(tenant);
    if (!groups) {
      groups = new Set();
      this.groupLabels.set(tenant, groups);
    }
    if (groups.has(group)) return group;
    if (groups.size >= MAX_GROUP_LABELS) return OTHER_GROUP;
    groups.add(group);
    return group;
  }

  drop(reason: DropReason, n = 1): void {
    if (n > 0) this.dropped.inc({ reason }, n);
  }
}
