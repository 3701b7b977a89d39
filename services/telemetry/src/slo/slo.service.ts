import { randomUUID } from 'node:crypto';
import { KAFKA_TOPICS, type SloAlert, type SloSeverity } from '@edgefl/contracts';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { LOGGER, NotFoundError } from '@edgefl/service-kit';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import {
  evaluateBurnRate,
  scaledWindows,
  type BurnRateEvaluation,
  type SloObjective,
} from '../analysis/burn-rate.js';
import { PeriodicTask } from '../common/periodic-task.js';
import type { SloSpec, TelemetryConfig } from '../config.js';
import { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { fractionAtOrBelow } from '../sli/rollup.js';
import { SliService } from '../sli/sli.service.js';
import type { SloRecord, SloSli, TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';

const SLO = KAFKA_TOPICS.telemetrySlo.name;
const SEVERITIES: readonly SloSeverity[] = ['PAGE', 'TICKET'];

export interface SloStatus {
  objective: SloRecord & { name: string };
  evaluatedAt: number | null;
  evaluation: BurnRateEvaluation | null;
  firing: SloSeverity[];
}

export const objectiveName = (s: { sli: SloSli; modelId: string | null }) =>
  `${s.sli.toLowerCase()}:${s.modelId ?? '*'}`;
const objectiveKey = (s: { tenant: string; sli: SloSli; modelId: string | null }) =>
  `${s.tenant}\n${s.modelId ?? ''}\n${s.sli}`;

/**
 * SLOs per tenant and model (availability of inference, p99 latency, telemetry freshness, OTA success) from
 * TELEMETRY_SLOS and the API, evaluated every TELEMETRY_SLO_INTERVAL_MS with the SRE workbook's multi-window,
 * multi-burn-rate table (analysis/burn-rate.ts). An alert that starts or stops firing is a `SloAlert` on
 * edgefl.telemetry.slo.v1 (FIRING / RESOLVED), stored and listed by the API.
 */
@Injectable()
export class SloService implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Last evaluation and firing severities per objective (bounded: objectives are few; the LRU caps it anyway). */
  private readonly status = new LRUCache<
    string,
    { at: number; evaluation: BurnRateEvaluation; firing: Set<SloSeverity> }
  >({
    max: 10_000,
  });

  private readonly task: PeriodicTask<SloStatus[]>;

  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) private readonly config: TelemetryConfig,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly slis: SliService,
    private readonly metrics: TelemetryMetrics,
  ) {
    this.task = new PeriodicTask('SLO evaluation', () => this.evaluateAll(), [], logger);
  }

  async onApplicationBootstrap(): Promise<void> {
    const now = this.slis.now();
    for (const s of this.config.own.slo.objectives) await this.store.putSlo({ ...s, updatedAt: now });
    this.task.start(this.config.own.slo.intervalMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  async put(spec: SloSpec): Promise<SloRecord> {
    const record = { ...spec, updatedAt: this.slis.now() };
    await this.store.putSlo(record);
    return record;
  }

  async remove(tenant: string, sli: SloSli, modelId: string | null): Promise<void> {
    if (!(await this.store.deleteSlo(tenant, modelId, sli)))
      throw new NotFoundError(
        `tenant ${tenant} has no ${sli} objective for ${modelId ?? 'the whole tenant'}`,
      );
    this.status.delete(objectiveKey({ tenant, sli, modelId }));
  }

  async list(tenant: string): Promise<SloStatus[]> {
    return (await this.store.listSlos({ tenant })).map((o) => this.statusOf(o));
  }

  private statusOf(o: SloRecord): SloStatus {
    const s = this.status.get(objectiveKey(o));
    return {
      objective: { ...o, name: objectiveName(o) },
      evaluatedAt: s?.at ?? null,
      evaluation: s?.evaluation ?? null,
      firing: s ? [...s.firing] : [],
    };
  }

  /** Evaluates every objective and publishes the alerts that changed (one run at a time). */
  tick(): Promise<SloStatus[]> {
    return this.task.tick();
  }

  private async evaluateAll(): Promise<SloStatus[]> {
    const now = this.slis.now();
    const events: SloAlert[] = [];
    const out: SloStatus[] = [];
    for (const o of await this.store.listSlos()) {
      const evaluation = await this.evaluate(o, now);
      const key = objectiveKey(o);
      const before = this.status.get(key)?.firing ?? new Set<SloSeverity>();
      const firing = new Set<SloSeverity>();
      if (evaluation.page) firing.add('PAGE');
      if (evaluation.ticket) firing.add('TICKET');
      for (const severity of SEVERITIES) {
        if (firing.has(severity) === before.has(severity)) continue;
        const state = firing.has(severity) ? 'FIRING' : 'RESOLVED';
        const rows = evaluation.verdicts.filter((v) => v.severity === severity);
        const verdict = rows.find((v) => v.firing) ?? rows[0]!;
        const alert: SloAlert = {
          eventId: randomUUID(),
          tenant: o.tenant,
          modelId: o.modelId,
          objective: objectiveName(o),
          sli: o.sli,
          target: o.target,
          severity,
          state,
          burnRateLong: verdict.burnRateLong ?? 0,
          burnRateShort: verdict.burnRateShort ?? 0,
          longWindowMs: verdict.longWindowMs,
          shortWindowMs: verdict.shortWindowMs,
          errorBudgetRemaining: evaluation.errorBudgetRemaining ?? 1,
          at: now,
        };
        events.push(alert);
        await this.store.putAlert({
          id: alert.eventId,
          kind: 'slo',
          tenant: o.tenant,
          modelId: o.modelId ?? '',
          version: null,
          name: alert.objective,
          severity,
          state,
          detail: { ...alert },
          at: now,
        });
      }
      this.status.set(key, { at: now, evaluation, firing });
      out.push(this.statusOf(o));
    }
    if (events.length > 0) {
      await this.bus.publish(
        SLO,
        events.map((value) => ({ value })),
      );
      this.metrics.published.inc({ topic: SLO }, events.length);
    }
    return out;
  }

  /** The burn-rate evaluation of one objective now: error ratios over every window the table needs. */
  async evaluate(o: SloRecord, now: number): Promise<BurnRateEvaluation> {
    const objective: SloObjective = {
      name: objectiveName(o),
      sli: o.sli,
      target: o.target,
      windowMs: o.windowMs,
    };
    const windows = new Set<number>([o.windowMs]);
    for (const w of scaledWindows(o.windowMs)) {
      windows.add(w.longWindowMs);
      windows.add(w.shortWindowMs);
    }
    const ratios = new Map<number, number | null>();
    for (const w of windows) ratios.set(w, await this.errorRatio(o, now - w, now + 1));
    return evaluateBurnRate(objective, (w) => ratios.get(w) ?? null);
  }

  /** Bad ÷ all events of the objective's SLI over [from, to); null without events. */
  private async errorRatio(o: SloRecord, from: number, to: number): Promise<number | null> {
    switch (o.sli) {
      case 'AVAILABILITY': {
        const r = await this.slis.cohort({ tenant: o.tenant, modelId: o.modelId ?? undefined, from, to });
        return r.inferences > 0 ? r.errors / r.inferences : null;
      }
      case 'LATENCY_P99': {
        const r = await this.slis.cohort({ tenant: o.tenant, modelId: o.modelId ?? undefined, from, to });
        if (r.latency.totalCount === 0) return null;
        return Math.min(1, Math.max(0, 1 - fractionAtOrBelow(r.latency, (o.thresholdMs ?? 0) * 1000)));
      }
      case 'OTA_SUCCESS': {
        const ota = await this.slis.ota({ tenant: o.tenant, modelId: o.modelId ?? undefined, from, to });
        return ota.finished > 0 ? (ota.failed + ota.rolledBack) / ota.finished : null;
      }
      case 'FRESHNESS': {
        // a point-in-time SLI: the share of the tenant's devices silent now (every window sees the same ratio)
        const rows = (await this.store.deviceFreshness(to - this.config.own.silentAfterMs)).filter(
          (r) => r.tenant === o.tenant,
        );
        const all = rows.reduce((n, r) => n + r.fresh + r.silent, 0);
        return all > 0 ? rows.reduce((n, r) => n + r.silent, 0) / all : null;
      }
    }
  }
}
