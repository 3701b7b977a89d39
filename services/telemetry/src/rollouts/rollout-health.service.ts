import { randomUUID } from 'node:crypto';
import { KAFKA_TOPICS, type RolloutHealth } from '@edgefl/contracts';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { psi } from '../analysis/drift.js';
import { PeriodicTask } from '../common/periodic-task.js';
import type { TelemetryConfig } from '../config.js';
import { TelemetryMetrics } from '../metrics/telemetry-metrics.js';
import { SliService, type OtaSlis } from '../sli/sli.service.js';
import { slisOf, type InferenceSlis } from '../sli/rollup.js';
import type { ReleaseRecord, TelemetryStore } from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';

const HEALTH = KAFKA_TOPICS.rolloutHealth.name;

/** One cohort of a release over a window. */
export interface CohortView {
  version: number;
  devicesReporting: number;
  slis: InferenceSlis;
}

/** What telemetry sees of a release now: canary vs baseline over the same window, and the health it publishes. */
export interface ReleaseHealthView {
  release: ReleaseRecord;
  windowStart: number;
  windowEnd: number;
  canary: CohortView;
  baseline: CohortView | null;
  ota: OtaSlis;
  driftScore: number;
  /** The event published for this window, or why none is (too few inferences yet). */
  health: RolloutHealth | null;
  reason: string | null;
}

/**
 * Rollout health: for each release rolling out (from the registry's release events), the canary cohort (devices on
 * the release's version in its target groups) against the baseline cohort (the same groups still on the stable
 * version: the one most of them run below the release's) over the same window — devices reporting, OTA failure rate
 * of the release since its stage started, inference error rate, p95 latency, mean confidence, accuracy where labels
 * arrived, and the drift (PSI) of the canary's confidence distribution from the baseline's — published on
 * edgefl.rollout.health.v1 every TELEMETRY_HEALTH_INTERVAL_MS. The registry's gates decide; nothing is judged here.
 */
@Injectable()
export class RolloutHealthService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly task: PeriodicTask<number>;

  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) private readonly config: TelemetryConfig,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly slis: SliService,
    private readonly metrics: TelemetryMetrics,
  ) {
    this.task = new PeriodicTask('rollout health computation', () => this.publishAll(), 0, logger);
  }

  onApplicationBootstrap(): void {
    this.task.start(this.config.own.health.intervalMs);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.task.stop();
  }

  /** Computes and publishes the health of every release rolling out (one run at a time); how many it published. */
  tick(): Promise<number> {
    return this.task.tick();
  }

  private async publishAll(): Promise<number> {
    const live = await this.store.listReleases({ states: ['ROLLING_OUT'] });
    const events: RolloutHealth[] = [];
    for (const release of live) {
      const view = await this.compute(release);
      if (view?.health) events.push(view.health);
    }
    if (events.length === 0) return 0;
    await this.bus.publish(
      HEALTH,
      events.map((value) => ({ value })),
    );
    this.metrics.published.inc({ topic: HEALTH }, events.length);
    return events.length;
  }

  /** The release's cohorts over the current window; null for a release whose version is not known yet. */
  async compute(release: ReleaseRecord): Promise<ReleaseHealthView | null> {
    if (release.version <= 0) return null;
    const now = this.slis.now();
    const windowStart = Math.max(release.stageStartedAt, now - this.config.own.health.windowMs);
    const groups = release.groups;
    const cohort = async (version: number): Promise<CohortView> => {
      const rollup = await this.slis.cohort({
        tenant: release.tenant,
        modelId: release.modelId,
        versions: [version],
        groups,
        from: windowStart,
        to: now + 1,
      });
      const devicesReporting = await this.store.countReporting({
        tenant: release.tenant,
        modelId: release.modelId,
        version,
        groups,
        since: windowStart,
      });
      return { version, devicesReporting, slis: slisOf(rollup) };
    };
    const canary = await cohort(release.version);
    const stable = await this.stableVersion(release);
    const baseline = stable === null ? null : await cohort(stable);
    const ota = await this.slis.ota({
      tenant: release.tenant,
      modelId: release.modelId,
      toVersion: release.version,
      groups,
      from: release.stageStartedAt,
      to: now + 1,
    });
    const driftScore =
      baseline && sum(baseline.slis.confidenceBins) > 0 && sum(canary.slis.confidenceBins) > 0
        ? psi(baseline.slis.confidenceBins, canary.slis.confidenceBins)
        : 0;
    const view: ReleaseHealthView = {
      release,
      windowStart,
      windowEnd: now,
      canary,
      baseline,
      ota,
      driftScore,
      health: null,
      reason: null,
    };
    const c = canary.slis;
    const needed = this.config.own.health.minInferences;
    if (c.inferences < needed) {
      view.reason = `${c.inferences} inferences of v${release.version} in the window; ${needed} needed`;
      return view;
    }
    const b = baseline?.slis ?? null;
    view.health = {
      eventId: randomUUID(),
      tenant: release.tenant,
      releaseId: release.releaseId,
      modelId: release.modelId,
      version: release.version,
      stage: release.stage,
      windowStart,
      windowEnd: now,
      devicesReporting: canary.devicesReporting,
      otaFailureRate: ota.finished > 0 ? (ota.failed + ota.rolledBack) / ota.finished : 0,
      inferenceErrorRate: c.errorRate ?? 0,
      p95LatencyMs: c.latencyMs?.p95 ?? 0,
      accuracy: c.accuracy,
      // every inference failed: no confidence to speak of (the error-rate gate judges that window)
      meanConfidence: c.meanConfidence ?? 0,
      driftScore,
      baselineVersion: baseline?.version ?? null,
      baselineDevicesReporting: baseline?.devicesReporting ?? null,
      baselineInferenceErrorRate: b?.errorRate ?? null,
      baselineP95LatencyMs: b?.latencyMs?.p95 ?? null,
      baselineAccuracy: b?.accuracy ?? null,
      baselineMeanConfidence: b?.meanConfidence ?? null,
    };
    return view;
  }

  /** The version most devices of the release's groups run below the release's version (null: none). */
  async stableVersion(release: ReleaseRecord): Promise<number | null> {
    const mix = await this.store.versionMix(release.tenant, release.modelId);
    const counts = new Map<number, number>();
    for (const m of mix) {
      if (m.version >= release.version) continue;
      if (release.groups.length > 0 && !release.groups.includes(m.group)) continue;
      counts.set(m.version, (counts.get(m.version) ?? 0) + m.devices);
    }
    let best: number | null = null;
    for (const [version, n] of counts) {
      const bestCount = best === null ? -1 : counts.get(best)!;
      if (n > bestCount || (n === bestCount && version > best!)) best = version;
    }
    return best;
  }
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);
