import { randomUUID } from 'node:crypto';
import { KAFKA_TOPICS, type DriftAlert, type DriftSubject } from '@edgefl/contracts';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { driftBetween, klDivergence, psi } from '../analysis/drift.js';
import { AnalysisError } from '../analysis/errors.js';
import { PeriodicTask } from '../common/periodic-task.js';
import type { TelemetryConfig } from '../config.js';
import { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { SliService } from '../sli/sli.service.js';
import type { Rollup } from '../sli/rollup.js';
import type { TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';

const DRIFT = KAFKA_TOPICS.telemetryDrift.name;

/** One drift measurement of a model version: current window against its baseline window. */
export interface DriftFinding {
  tenant: string;
  modelId: string;
  version: number;
  subject: DriftSubject;
  feature: string | null;
  psi: number;
  kl: number;
  samples: { baseline: number; current: number };
  windowStart: number;
  windowEnd: number;
  baselineStart: number;
  baselineEnd: number;
  alerted: boolean;
}

const total = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * Drift: for every model version with data in the last TELEMETRY_DRIFT_WINDOW_MS, PSI and KL of its prediction and
 * confidence distributions and of its heartbeats' feature summaries against the version's baseline window (its
 * first TELEMETRY_DRIFT_BASELINE_MS of data), over every device group. PSI above TELEMETRY_DRIFT_PSI_THRESHOLD is a
 * `DriftAlert` on edgefl.telemetry.drift.v1 (and in the API), raised once per version, subject and current window.
 */
@Injectable()
export class DriftService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: PeriodicTask<DriftFinding[]>;

  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) private readonly config: TelemetryConfig,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly slis: SliService,
    private readonly metrics: TelemetryMetrics,
  ) {
    this.task = new PeriodicTask('drift evaluation', () => this.evaluateAll(), [], logger);
  }

  onApplicationBootstrap(): void {
    this.task.start(this.config.own.drift.intervalMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** Evaluates every active version and publishes the alerts (one run at a time). */
  tick(): Promise<DriftFinding[]> {
    return this.task.tick();
  }

  private async evaluateAll(): Promise<DriftFinding[]> {
    this.metrics.driftEvaluations.inc();
    const { windowMs } = this.config.own.drift;
    const now = this.slis.now();
    const res = this.slis.resolutionFor(windowMs);
    const findings: DriftFinding[] = [];
    for (const s of await this.store.activeSeries(res, now - windowMs, now + 1))
      findings.push(...(await this.evaluate(s.tenant, s.modelId, s.version, now)));
    const alerts = findings.filter((f) => f.alerted);
    if (alerts.length > 0) {
      const devices = new Map<string, number>();
      for (const f of alerts) {
        const k = `${f.tenant}\n${f.modelId}\n${f.version}`;
        if (!devices.has(k))
          devices.set(
            k,
            await this.store.countReporting({
              tenant: f.tenant,
              modelId: f.modelId,
              version: f.version,
              groups: [],
              since: f.windowStart,
            }),
          );
      }
      const events: DriftAlert[] = alerts.map((f) => ({
        eventId: randomUUID(),
        tenant: f.tenant,
        modelId: f.modelId,
        version: f.version,
        subject: f.subject,
        feature: f.feature,
        metric: 'PSI',
        value: f.psi,
        threshold: this.config.own.drift.psiThreshold,
        windowStart: f.windowStart,
        windowEnd: f.windowEnd,
        baselineStart: f.baselineStart,
        baselineEnd: f.baselineEnd,
        devices: devices.get(`${f.tenant}\n${f.modelId}\n${f.version}`) ?? 0,
      }));
      await this.bus.publish(
        DRIFT,
        events.map((value) => ({ value })),
      );
      this.metrics.published.inc({ topic: DRIFT }, events.length);
    }
    return findings;
  }

  /** Drift of one version now; findings past the threshold are stored as alerts (once per window). */
  async evaluate(tenant: string, modelId: string, version: number, now: number): Promise<DriftFinding[]> {
    const { windowMs, baselineMs, psiThreshold, minSamples } = this.config.own.drift;
    const first = await this.store.firstBucket(this.slis.resolutionFor(baselineMs), tenant, modelId, version);
    if (first === null) return [];
    const baselineEnd = first + baselineMs;
    const windowStart = Math.max(now - windowMs, baselineEnd);
    if (windowStart >= now) return []; // the baseline window is not over yet
    const q = { tenant, modelId, versions: [version] };
    const baseline = await this.slis.cohort({ ...q, from: first, to: baselineEnd });
    const current = await this.slis.cohort({ ...q, from: windowStart, to: now + 1 });
    const findings: DriftFinding[] = [];
    const frame = {
      tenant,
      modelId,
      version,
      windowStart,
      windowEnd: now,
      baselineStart: first,
      baselineEnd,
    };
    const distribution = (subject: DriftSubject, pick: (r: Rollup) => number[]) => {
      const b = pick(baseline);
      const c = pick(current);
      if (total(b) < minSamples || total(c) < minSamples) return;
      findings.push({
        ...frame,
        subject,
        feature: null,
        psi: psi(b, c),
        kl: klDivergence(c, b),
        samples: { baseline: total(b), current: total(c) },
        alerted: false,
      });
    };
    distribution('CONFIDENCE', (r) => r.confidenceBins);
    distribution('PREDICTION', (r) => r.predictionBins);
    for (const [name, b] of Object.entries(baseline.features)) {
      const c = current.features[name];
      if (!c || b.count < minSamples || c.count < minSamples) continue;
      try {
        const d = driftBetween(b, c);
        findings.push({
          ...frame,
          subject: 'FEATURE',
          feature: name,
          psi: d.psi,
          kl: d.kl,
          samples: { baseline: d.baselineCount, current: d.currentCount },
          alerted: false,
        });
      } catch (error) {
        if (!(error instanceof AnalysisError)) throw error;
        this.logger.warn(
          { modelId, version, feature: name, code: error.code },
          'feature drift not computable',
        );
      }
    }
    for (const f of findings) {
      if (f.psi <= psiThreshold) continue;
      const slot = Math.floor(now / windowMs);
      f.alerted = await this.store.putAlert({
        id: `drift:${tenant}:${modelId}:${version}:${f.subject}:${f.feature ?? ''}:${slot}`,
        kind: 'drift',
        tenant,
        modelId,
        version,
        name: f.feature === null ? f.subject.toLowerCase() : `feature:${f.feature}`,
        severity: f.psi > 2 * psiThreshold ? 'significant' : 'moderate',
        state: 'firing',
        detail: { ...f, alerted: true },
        at: now,
      });
    }
    return findings;
  }
}
