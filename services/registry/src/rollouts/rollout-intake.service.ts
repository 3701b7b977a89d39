import { KAFKA_TOPICS, type OtaStatus, type RolloutHealth } from '@edgefl/contracts';
import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, METRICS_REGISTRY, type Clock } from '@edgefl/service-kit';
import { Counter, type Registry } from 'prom-client';
import { LIVE_STATES, type BaselineSlis, type Release } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_STORE } from '../tokens.js';
import { RolloutEngine } from './rollout-engine.service.js';

/**
 * The gates' inputs: rollout-health windows (from telemetry on the bus, or posted by an operator), OTA statuses of
 * devices, and devices told to install a release. Callers validate a window first (rollout-health.ts).
 */
@Injectable()
export class RolloutIntake {
  private readonly ignored: Counter;

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(METRICS_REGISTRY) metrics: Registry,
    private readonly engine: RolloutEngine,
  ) {
    this.ignored = new Counter({
      name: 'edgefl_registry_ignored_events_total',
      help: 'Consumed events that name an unknown release, device or version (acknowledged, not acted on).',
      labelNames: ['topic'],
      registers: [metrics],
    });
  }

  /**
   * A rollout-health window. Stage "baseline" sets the baseline SLIs; any other re-evaluates the release's gates.
   * Idempotent by event id. Returns false when the release is unknown.
   */
  async recordHealth(h: RolloutHealth): Promise<boolean> {
    const release = await this.store.releases.getRelease(h.releaseId);
    if (!release) {
      this.ignored.inc({ topic: KAFKA_TOPICS.rolloutHealth.name });
      return false;
    }
    const now = this.clock.now();
    const fresh = await this.store.releases.insertHealth({
      eventId: h.eventId,
      releaseId: h.releaseId,
      stage: h.stage,
      windowStart: h.windowStart,
      windowEnd: h.windowEnd,
      devicesReporting: h.devicesReporting,
      otaFailureRate: h.otaFailureRate,
      inferenceErrorRate: h.inferenceErrorRate,
      p95LatencyMs: h.p95LatencyMs,
      accuracy: h.accuracy,
      meanConfidence: h.meanConfidence,
      driftScore: h.driftScore,
      baselineVersion: h.baselineVersion ?? null,
      baselineDevicesReporting: h.baselineDevicesReporting ?? null,
      baselineInferenceErrorRate: h.baselineInferenceErrorRate ?? null,
      baselineP95LatencyMs: h.baselineP95LatencyMs ?? null,
      baselineAccuracy: h.baselineAccuracy ?? null,
      baselineMeanConfidence: h.baselineMeanConfidence ?? null,
      receivedAt: now,
    });
    if (!fresh) return true;
    if (h.stage === 'baseline') {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = (await this.store.releases.getRelease(h.releaseId))!;
        const baseline: BaselineSlis = {
          p95LatencyMs: h.p95LatencyMs,
          accuracy: h.accuracy ?? current.baseline?.accuracy ?? null,
          meanConfidence: h.meanConfidence,
        };
        if (
          await this.store.releases.updateRelease(current.id, current.revision, { baseline, updatedAt: now })
        )
          break;
      }
      return true;
    }
    const current = await this.store.releases.getRelease(h.releaseId);
    if (current) await this.engine.evaluate(current);
    return true;
  }

  /** An OTA status of one device (from the bus or posted): progress, success or failure in its release. */
  async recordOtaStatus(s: OtaStatus): Promise<boolean> {
    const device = await this.store.devices.getDevice(s.deviceId);
    if (!device) {
      this.ignored.inc({ topic: KAFKA_TOPICS.otaStatus.name });
      return false;
    }
    const now = this.clock.now();
    if (s.state === 'ACTIVE')
      await this.store.devices.updateDevice(s.deviceId, { currentVersion: s.toVersion, lastSeenAt: now });
    else await this.store.devices.updateDevice(s.deviceId, { lastSeenAt: now });
    const release = s.releaseId
      ? await this.store.releases.getRelease(s.releaseId)
      : await this.store.releases.liveRelease(s.modelId);
    if (
      !release ||
      release.modelId !== s.modelId ||
      release.version !== s.toVersion ||
      !LIVE_STATES.includes(release.state)
    )
      return true;
    await this.deviceAssigned(release, s.deviceId);
    if (s.state === 'ACTIVE')
      await this.store.releases.finishDeviceRollout(release.id, s.deviceId, 'succeeded', now);
    if (s.state === 'FAILED' || s.state === 'ROLLED_BACK')
      await this.store.releases.finishDeviceRollout(release.id, s.deviceId, 'failed', now);
    return true;
  }

  /** A device in the current stage was told to install the release: track it (and its deadline). */
  async deviceAssigned(release: Release, deviceId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.releases.startDeviceRollout({
      releaseId: release.id,
      deviceId,
      stageIndex: release.stageIndex,
      state: 'in_progress',
      startedAt: now,
      deadlineAt: now + release.gates.deviceTimeoutMs,
      updatedAt: now,
    });
  }
}
