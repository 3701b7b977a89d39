import { KAFKA_TOPICS } from '@edgefl/contracts';
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { KafkaTopicValue, OtaStatus, RolloutHealth } from '@edgefl/contracts';
import {
  CLOCK,
  type Clock,
  ConflictError,
  LOGGER,
  METRICS_REGISTRY,
  NotFoundError,
  UnprocessableError,
} from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { RegistryConfig } from '../config.js';
import { enqueueEvent } from '../events/outbox.js';
import { OutboxRelay } from '../events/outbox-relay.service.js';
import { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { artifactPath, deltaPath, ModelsService, type PreparedVersion } from '../models/models.service.js';
import { StoreConflictError } from '../storage/errors.js';
import {
  LIVE_STATES,
  type BaselineSlis,
  type GateSpec,
  type Release,
  type RollForward,
  type RolloutState,
  type StageSpec,
  type Targeting,
} from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { evaluateGates, type GateVerdict } from './gates.js';
import { stableReleaseOf } from './stable.js';

/** The stage a roll-forward's manifest is published under (every device that is offered the stable version). */
const ROLLBACK_STAGE = { name: 'rollback', percentage: 100 } as const;

const NO_TARGETING: Targeting = { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] };

export interface CreateRelease {
  version: number;
  stages?: Array<number | StageSpec> | undefined;
  gates?: Partial<GateSpec> | undefined;
  targeting?: Partial<Targeting> | undefined;
  baseline?: Partial<BaselineSlis> | undefined;
  /** Start rolling out now (default) or stay PENDING until started by hand. */
  start?: boolean | undefined;
}

/** A health window whose values cannot be right (NaN, rates outside 0..1, ...): refused, never acted on. */
export class InvalidHealthError extends Error {
  override readonly name = 'InvalidHealthError';
}

function invalidHealth(h: RolloutHealth): string | null {
  const rates = {
    otaFailureRate: h.otaFailureRate,
    inferenceErrorRate: h.inferenceErrorRate,
    meanConfidence: h.meanConfidence,
    accuracy: h.accuracy ?? 0,
  };
  for (const [name, value] of Object.entries(rates)) {
    if (!Number.isFinite(value) || value < 0 || value > 1) return `${name} must be within 0..1`;
  }
  if (!Number.isFinite(h.p95LatencyMs) || h.p95LatencyMs < 0)
    return 'p95LatencyMs must be a finite non-negative number';
  if (!Number.isFinite(h.driftScore) || h.driftScore < 0)
    return 'driftScore must be a finite non-negative number';
  if (!Number.isSafeInteger(h.devicesReporting) || h.devicesReporting < 0)
    return 'devicesReporting must be a non-negative integer';
  if (h.windowEnd < h.windowStart) return 'windowEnd is before windowStart';
  if (h.stage.length === 0 || h.stage.length > 64) return 'stage must be 1-64 characters';
  return null;
}

/** Manual and automatic moves of the rollout state machine. */
const ALLOWED: Record<RolloutState, readonly RolloutState[]> = {
  PENDING: ['ROLLING_OUT', 'ROLLED_BACK'],
  ROLLING_OUT: ['ROLLING_OUT', 'PAUSED', 'HALTED', 'COMPLETED', 'ROLLED_BACK'],
  PAUSED: ['ROLLING_OUT', 'ROLLED_BACK'],
  HALTED: ['ROLLED_BACK', 'ROLLING_OUT'],
  COMPLETED: [],
  ROLLED_BACK: [],
};

function stageName(percentage: number, index: number, count: number): string {
  if (index === count - 1 && percentage === 100) return 'full';
  if (index === 0 && percentage < 10) return 'canary';
  return `${percentage}pct`;
}

/**
 * The staged rollout engine. State lives in the store (release rows, transitions, per-device progress, health
 * windows), so a restart resumes every rollout and its timers (soak: stage start time; device deadlines) where they
 * were. Every transition is recorded, visible in the API, and published on the bus through the outbox; concurrent
 * movers (two replicas, an operator and the scheduler) are serialised by compare-and-set on the release revision.
 */
@Injectable()
export class RolloutsService {
  private readonly listeners: Array<(modelId: string) => void> = [];
  private readonly transitions: Counter;
  private readonly ignored: Counter;

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
    private readonly signer: ManifestSigner,
    private readonly relay: OutboxRelay,
    private readonly models: ModelsService,
  ) {
    this.transitions = new Counter({
      name: 'edgefl_registry_rollout_transitions_total',
      help: 'Rollout state transitions.',
      labelNames: ['to_state'],
      registers: [metrics],
    });
    this.ignored = new Counter({
      name: 'edgefl_registry_ignored_events_total',
      help: 'Consumed events that name an unknown release, device or version (acknowledged, not acted on).',
      labelNames: ['topic'],
      registers: [metrics],
    });
  }

  /** Called with a model id after any release of it changes (manifest caches drop it). */
  onChange(listener: (modelId: string) => void): void {
    this.listeners.push(listener);
  }

  defaultGates(): GateSpec {
    const r = this.config.own.rollout;
    return {
      minDevicesReporting: r.minDevices,
      minSoakMs: r.minSoakMs,
      maxOtaFailureRate: 0.05,
      maxInferenceErrorRate: 0.02,
      maxLatencyRatio: 1.5,
      maxAccuracyDrop: 0.02,
      maxConfidenceDrop: 0.05,
      maxDriftScore: 0.2,
      deviceTimeoutMs: r.deviceTimeoutMs,
    };
  }

  async create(modelId: string, input: CreateRelease): Promise<Release> {
    const model = await this.store.getModel(modelId);
    if (!model) throw new NotFoundError(`no model ${modelId}`);
    const version = await this.store.getVersion(modelId, input.version);
    if (!version) throw new UnprocessableError(`model ${modelId} has no version ${input.version}`);
    if (version.status !== 'active') throw new UnprocessableError(`version ${input.version} is deprecated`);
    if (model.stableVersion === input.version)
      throw new ConflictError(`version ${input.version} is already the stable version`);
    if (model.stableVersion !== null && input.version < model.stableVersion)
      throw new UnprocessableError(
        `version ${input.version} is lower than the stable version ${model.stableVersion}: devices refuse a lower version (TUF rollback protection); upload it again as a new version`,
      );
    const raw = input.stages ?? this.config.own.rollout.stages;
    const stages: StageSpec[] = raw.map((s, i) =>
      typeof s === 'number' ? { name: stageName(s, i, raw.length), percentage: s } : s,
    );
    stages.forEach((s, i) => {
      if (i > 0 && s.percentage <= stages[i - 1]!.percentage)
        throw new UnprocessableError('stage percentages must increase');
    });
    if (stages[stages.length - 1]!.percentage !== 100)
      throw new UnprocessableError('the last stage must reach 100% of eligible devices');
    if (new Set(stages.map((s) => s.name)).size !== stages.length)
      throw new UnprocessableError('stage names must be unique');
    const previous =
      model.stableVersion !== null ? await this.store.getVersion(modelId, model.stableVersion) : null;
    const fromMetrics = (name: string) =>
      previous && Number.isFinite(previous.metrics[name]) ? previous.metrics[name]! : null;
    const baseline: BaselineSlis = {
      p95LatencyMs: input.baseline?.p95LatencyMs ?? fromMetrics('p95LatencyMs'),
      accuracy: input.baseline?.accuracy ?? fromMetrics('accuracy'),
      meanConfidence: input.baseline?.meanConfidence ?? fromMetrics('meanConfidence'),
    };
    const now = this.clock.now();
    const release: Release = {
      id: `rel-${randomUUID()}`,
      tenantId: model.tenantId,
      modelId,
      version: input.version,
      previousVersion: model.stableVersion,
      state: 'PENDING',
      stageIndex: 0,
      stages,
      gates: { ...this.defaultGates(), ...input.gates },
      targeting: {
        minRamBytes: null,
        firmwareRange: null,
        hardwareClasses: [],
        groups: [],
        ...input.targeting,
      },
      baseline: Object.values(baseline).every((x) => x === null) ? null : baseline,
      rollForward: null,
      stageStartedAt: now,
      reason: 'created',
      revision: 0,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.store.transaction(async (tx) => {
        await tx.insertRelease(release);
        await tx.insertTransition({
          releaseId: release.id,
          seq: 1,
          fromState: 'PENDING',
          toState: 'PENDING',
          stage: stages[0]!,
          reason: 'created',
          at: now,
        });
        await this.enqueueTransition(tx, release, 'PENDING', 'PENDING', 'created', now);
      });
    } catch (error) {
      if (error instanceof StoreConflictError)
        throw new ConflictError(`model ${modelId} already has a live release`);
      throw error;
    }
    this.changed(release);
    if (input.start ?? true)
      return (await this.move(release.id, 'ROLLING_OUT', 'started', { manual: false })) ?? release;
    return release;
  }

  async get(id: string): Promise<Release> {
    const release = await this.store.getRelease(id);
    if (!release) throw new NotFoundError(`no release ${id}`);
    return release;
  }

  list(filter: { modelId?: string; tenantId?: string; live?: boolean }): Promise<Release[]> {
    return this.store.listReleases({
      ...(filter.modelId !== undefined ? { modelId: filter.modelId } : {}),
      ...(filter.tenantId !== undefined ? { tenantId: filter.tenantId } : {}),
      ...(filter.live ? { states: LIVE_STATES } : {}),
    });
  }

  transitionsOf(id: string) {
    return this.store.listTransitions(id);
  }

  deviceCounts(id: string) {
    return this.store.deviceRolloutCounts(id);
  }

  /** What the gates say about the current stage right now (for the API and the scheduler). */
  async verdict(release: Release): Promise<GateVerdict> {
    const stage = release.stages[release.stageIndex]!;
    const [health, devices] = await Promise.all([
      this.store.latestHealth(release.id, stage.name, release.stageStartedAt),
      this.store.deviceRolloutCounts(release.id, release.stageIndex),
    ]);
    return evaluateGates({ release, health, devices, now: this.clock.now() });
  }

  // ── manual control ──────────────────────────────────────────────────────────────────────────────────────────
  async start(id: string): Promise<Release> {
    return this.manual(id, ['PENDING'], 'ROLLING_OUT', 'started by operator');
  }
  async pause(id: string, reason?: string): Promise<Release> {
    return this.manual(id, ['ROLLING_OUT'], 'PAUSED', reason ?? 'paused by operator');
  }
  async resume(id: string): Promise<Release> {
    return this.manual(id, ['PAUSED'], 'ROLLING_OUT', 'resumed by operator');
  }
  async abort(id: string, reason?: string): Promise<Release> {
    return this.manual(id, LIVE_STATES, 'ROLLED_BACK', reason ?? 'aborted by operator');
  }

  private async manual(
    id: string,
    from: readonly RolloutState[],
    to: RolloutState,
    reason: string,
  ): Promise<Release> {
    const release = await this.get(id);
    if (!from.includes(release.state))
      throw new ConflictError(`release ${id} is ${release.state}; cannot move to ${to}`);
    const moved = await this.move(id, to, reason, { manual: true, expect: release });
    if (!moved) throw new ConflictError(`release ${id} changed meanwhile; retry`);
    return moved;
  }

  /**
   * One transition, atomically: compare-and-set the release, append the transition, enqueue its event (and a new
   * signed manifest when a stage starts), mark the version stable on completion. Returns null when the release
   * moved meanwhile or the move is not allowed from its current state.
   */
  private async move(
    id: string,
    to: RolloutState,
    reason: string,
    options: { manual: boolean; expect?: Release; nextStage?: boolean },
  ): Promise<Release | null> {
    for (let attempt = 0; ; attempt++) {
      const forward = to === 'ROLLED_BACK' ? await this.prepareRollForward(id) : null;
      const prepared = forward && 'prepared' in forward ? forward.prepared : null;
      let result: Release | null;
      try {
        result = await this.moveOnce(id, to, reason, options, forward);
      } catch (error) {
        if (prepared) await this.models.discard(prepared);
        // another version took the roll-forward's number meanwhile: prepare again with the next one
        if (prepared && error instanceof StoreConflictError && attempt < 3) continue;
        throw error;
      }
      if (prepared) {
        if (result) this.models.published(prepared);
        else await this.models.discard(prepared);
      }
      if (result) {
        this.transitions.inc({ to_state: to });
        this.logger.info(
          {
            releaseId: id,
            modelId: result.modelId,
            version: result.version,
            to,
            stage: result.stages[result.stageIndex]?.name,
            reason: result.reason,
            ...(result.rollForward ? { rollForward: result.rollForward } : {}),
          },
          'rollout transition',
        );
        this.changed(result);
      }
      return result;
    }
  }

  /**
   * Rolling back rolls FORWARD (TUF: a device refuses a lower version, so devices that took the bad version would
   * be stuck on it): a new, higher version carrying the restored version's exact artifact. Restored = the version
   * that was stable when the release was created, else the tenant's safe baseline when it is this model's. Nothing
   * to do for a release that never rolled out (PENDING: no device was offered it) or has nothing to restore.
   * A failure to build it is logged and the rollback proceeds without it (never blocks taking the bad version
   * away from devices that have not installed it).
   */
  private async prepareRollForward(
    id: string,
  ): Promise<{ prepared: PreparedVersion; restoredVersion: number } | { failed: string } | null> {
    const release = await this.store.getRelease(id);
    if (!release || release.state === 'PENDING' || !ALLOWED[release.state].includes('ROLLED_BACK'))
      return null;
    let restoredVersion = release.previousVersion;
    if (restoredVersion === null) {
      const tenant = await this.store.getTenant(release.tenantId);
      if (tenant?.baseline?.modelId === release.modelId && tenant.baseline.version !== release.version)
        restoredVersion = tenant.baseline.version;
    }
    if (restoredVersion === null) return null;
    try {
      const prepared = await this.models.prepareRollForward({
        id: release.id,
        modelId: release.modelId,
        version: release.version,
        restoredVersion,
      });
      return { prepared, restoredVersion };
    } catch (error) {
      this.logger.error(
        { err: error, releaseId: id, modelId: release.modelId, restoredVersion },
        'roll-forward version could not be built; rolling back without it',
      );
      return { failed: (error as Error).message };
    }
  }

  /**
   * One transition, atomically: compare-and-set the release, append the transition, enqueue its event (and a new
   * signed manifest when a stage starts), mark the version stable on completion; on a rollback with a prepared
   * roll-forward, also record that version, make it the stable one and publish its manifest. Returns null when the
   * release moved meanwhile or the move is not allowed from its current state.
   */
  private async moveOnce(
    id: string,
    to: RolloutState,
    reason: string,
    options: { manual: boolean; expect?: Release; nextStage?: boolean },
    forward: { prepared: PreparedVersion; restoredVersion: number } | { failed: string } | null,
  ): Promise<Release | null> {
    const now = this.clock.now();
    return this.store.transaction(async (tx) => {
      const current = await tx.getRelease(id);
      if (!current || (options.expect && current.revision !== options.expect.revision)) return null;
      if (!ALLOWED[current.state].includes(to)) return null;
      const stageIndex = options.nextStage ? current.stageIndex + 1 : current.stageIndex;
      const restartsStage = options.nextStage || (to === 'ROLLING_OUT' && current.state !== 'ROLLING_OUT');
      let rollForward: RollForward | null = null;
      let fullReason = reason;
      if (forward && 'prepared' in forward) {
        const v = forward.prepared.version;
        rollForward = {
          version: v.version,
          label: v.label,
          restoredVersion: forward.restoredVersion,
          sha256: v.sha256,
          rollbackOf: current.version,
        };
        fullReason = `${reason}; rolled forward to v${v.version} (${v.label}) restoring v${forward.restoredVersion} (sha256 ${v.sha256})`;
      } else if (forward && 'failed' in forward) {
        fullReason = `${reason}; no roll-forward version: ${forward.failed}`.slice(0, 1000);
      }
      const patch = {
        state: to,
        reason: fullReason,
        updatedAt: now,
        stageIndex,
        ...(restartsStage ? { stageStartedAt: now } : {}),
        ...(rollForward ? { rollForward } : {}),
      };
      if (!(await tx.updateRelease(id, current.revision, patch))) return null;
      const next: Release = { ...current, ...patch, revision: current.revision + 1 };
      const seq = (await tx.listTransitions(id)).length + 1;
      await tx.insertTransition({
        releaseId: id,
        seq,
        fromState: current.state,
        toState: to,
        stage: next.stages[stageIndex]!,
        reason: fullReason,
        at: now,
      });
      await this.enqueueTransition(tx, next, current.state, to, fullReason, now, rollForward);
      if (to === 'COMPLETED') await tx.setStableVersion(current.modelId, current.version);
      if (to === 'ROLLING_OUT' && restartsStage) await this.enqueueManifest(tx, next, now);
      if (forward && 'prepared' in forward && rollForward) {
        await this.models.commitVersion(tx, forward.prepared);
        await tx.setStableVersion(current.modelId, rollForward.version);
        const governing = await stableReleaseOf(tx, current.modelId, forward.restoredVersion);
        await this.enqueueManifest(tx, next, now, {
          version: rollForward.version,
          stage: ROLLBACK_STAGE,
          targeting: governing?.targeting ?? NO_TARGETING,
        });
      }
      return next;
    });
  }

  private changed(release: Release): void {
    for (const listener of this.listeners) listener(release.modelId);
    this.relay.kick();
  }

  private async enqueueTransition(
    tx: RegistryStore,
    release: Release,
    from: RolloutState,
    to: RolloutState,
    reason: string,
    now: number,
    rollForward: RollForward | null = null,
  ) {
    const stage = release.stages[release.stageIndex]!;
    await enqueueReleaseEvent(tx, release, now, {
      'io.edgefl.registry.RolloutTransition': {
        releaseId: release.id,
        fromState: from,
        toState: to,
        stage: { stage: stage.name, percentage: stage.percentage },
        reason,
        // the roll-forward as data (the contract's record has no label: it is in the version event)
        rollForward: rollForward && {
          version: rollForward.version,
          restoredVersion: rollForward.restoredVersion,
          sha256: rollForward.sha256,
          rollbackOf: rollForward.rollbackOf,
        },
      },
    });
  }

  /**
   * The release's signed manifest for its current stage, as an event (the gateway retains it for devices); or,
   * with `what`, another version under the release (a rollback's roll-forward, stage "rollback", 100%).
   */
  private async enqueueManifest(
    tx: RegistryStore,
    release: Release,
    now: number,
    what?: { version: number; stage: { name: string; percentage: number }; targeting: Targeting },
  ) {
    const number = what?.version ?? release.version;
    const version = await tx.getVersion(release.modelId, number);
    if (!version) return;
    const deltas = await tx.listDeltas(release.modelId, number);
    const t = what?.targeting ?? release.targeting;
    const signed = await this.signer.signed({ version, deltas, targeting: t });
    const stage = what?.stage ?? release.stages[release.stageIndex]!;
    await enqueueReleaseEvent(tx, release, now, {
      'io.edgefl.registry.ReleaseManifest': {
        releaseId: release.id,
        tenant: release.tenantId,
        modelId: release.modelId,
        version: number,
        label: version.label,
        artifactUri: artifactPath(release.modelId, number),
        sha256: version.sha256,
        sizeBytes: version.sizeBytes,
        signature: Buffer.from(signed.signatures[0]!.sig, 'base64'),
        signingKeyId: signed.signatures[0]!.keyId,
        deltas: deltas.map((d) => ({
          fromVersion: d.fromVersion,
          sha256: d.sha256,
          sizeBytes: d.sizeBytes,
          uri: deltaPath(d.modelId, d.fromVersion, d.toVersion),
        })),
        rollout: { stage: stage.name, percentage: stage.percentage },
        targeting: {
          minRamBytes: t.minRamBytes,
          firmwareRange: t.firmwareRange,
          hardwareClasses: t.hardwareClasses,
          groups: t.groups,
        },
        expiresAt: Date.parse(signed.signed.expires),
        createdAt: Date.parse(signed.signed.created),
        // the envelope exactly as GET /v1/devices/{id}/manifest serves it in `manifest`
        signedManifest: JSON.stringify(signed),
      },
    });
  }

  // ── the scheduler's work: timers and gates ──────────────────────────────────────────────────────────────────
  /** Times out silent devices and evaluates every rolling-out release once. Safe to call concurrently across replicas. */
  async tick(): Promise<void> {
    await this.store.timeOutDevices(this.clock.now());
    // a release is HALTED only between a failed gate and its rollback: one found here was left by a crash
    for (const halted of await this.store.listReleases({ states: ['HALTED'] })) {
      await this.move(halted.id, 'ROLLED_BACK', 'automatic rollback after a failed gate (resumed)', {
        manual: false,
        expect: halted,
      }).catch((error: unknown) =>
        this.logger.error({ err: error, releaseId: halted.id }, 'resumed rollback failed'),
      );
    }
    for (const release of await this.store.listReleases({ states: ['ROLLING_OUT'] })) {
      await this.evaluate(release).catch((error: unknown) =>
        this.logger.error({ err: error, releaseId: release.id }, 'rollout evaluation failed'),
      );
    }
  }

  /** Acts on the gates' verdict: advance a stage, complete, or halt and roll back. */
  async evaluate(release: Release): Promise<void> {
    if (release.state !== 'ROLLING_OUT') return;
    const verdict = await this.verdict(release);
    if (verdict.decision === 'wait') return;
    const stage = release.stages[release.stageIndex]!;
    if (verdict.decision === 'fail') {
      const halted = await this.move(release.id, 'HALTED', `stage ${stage.name}: ${verdict.reason}`, {
        manual: false,
        expect: release,
      });
      if (halted)
        await this.move(release.id, 'ROLLED_BACK', 'automatic rollback after a failed gate', {
          manual: false,
          expect: halted,
        });
      return;
    }
    if (release.stageIndex === release.stages.length - 1) {
      await this.move(release.id, 'COMPLETED', `stage ${stage.name} passed all gates`, {
        manual: false,
        expect: release,
      });
    } else {
      const next = release.stages[release.stageIndex + 1]!;
      await this.move(
        release.id,
        'ROLLING_OUT',
        `stage ${stage.name} passed all gates; now ${next.name} (${next.percentage}%)`,
        {
          manual: false,
          expect: release,
          nextStage: true,
        },
      );
    }
  }

  // ── gate inputs ─────────────────────────────────────────────────────────────────────────────────────────────
  /**
   * A rollout-health window (from telemetry on the bus, or posted by an operator). Stage "baseline" sets the
   * baseline SLIs. Idempotent by event id. Returns false when the release is unknown.
   */
  async recordHealth(h: RolloutHealth): Promise<boolean> {
    const invalid = invalidHealth(h);
    if (invalid) throw new InvalidHealthError(invalid);
    const release = await this.store.getRelease(h.releaseId);
    if (!release) {
      this.ignored.inc({ topic: 'edgefl.rollout.health.v1' });
      return false;
    }
    const now = this.clock.now();
    const fresh = await this.store.insertHealth({
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
      receivedAt: now,
    });
    if (!fresh) return true;
    if (h.stage === 'baseline') {
      for (let attempt = 0; attempt < 5; attempt++) {
        const current = (await this.store.getRelease(h.releaseId))!;
        const baseline: BaselineSlis = {
          p95LatencyMs: h.p95LatencyMs,
          accuracy: h.accuracy ?? current.baseline?.accuracy ?? null,
          meanConfidence: h.meanConfidence,
        };
        if (await this.store.updateRelease(current.id, current.revision, { baseline, updatedAt: now })) break;
      }
      return true;
    }
    const current = await this.store.getRelease(h.releaseId);
    if (current) await this.evaluate(current);
    return true;
  }

  /** An OTA status of one device (from the bus or posted): progress, success or failure in its release. */
  async recordOtaStatus(s: OtaStatus): Promise<boolean> {
    const device = await this.store.getDevice(s.deviceId);
    if (!device) {
      this.ignored.inc({ topic: 'edgefl.ota.status.v1' });
      return false;
    }
    const now = this.clock.now();
    if (s.state === 'ACTIVE')
      await this.store.updateDevice(s.deviceId, { currentVersion: s.toVersion, lastSeenAt: now });
    else await this.store.updateDevice(s.deviceId, { lastSeenAt: now });
    const release = s.releaseId
      ? await this.store.getRelease(s.releaseId)
      : await this.store.liveRelease(s.modelId);
    if (
      !release ||
      release.modelId !== s.modelId ||
      release.version !== s.toVersion ||
      !LIVE_STATES.includes(release.state)
    )
      return true;
    await this.store.startDeviceRollout({
      releaseId: release.id,
      deviceId: s.deviceId,
      stageIndex: release.stageIndex,
      state: 'in_progress',
      startedAt: now,
      deadlineAt: now + release.gates.deviceTimeoutMs,
      updatedAt: now,
    });
    if (s.state === 'ACTIVE') await this.store.finishDeviceRollout(release.id, s.deviceId, 'succeeded', now);
    if (s.state === 'FAILED' || s.state === 'ROLLED_BACK')
      await this.store.finishDeviceRollout(release.id, s.deviceId, 'failed', now);
    return true;
  }

  /** A device in the current stage was told to install the release: track it (and its deadline). */
  async deviceAssigned(release: Release, deviceId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.startDeviceRollout({
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

/** Puts one `edgefl.registry.release.v1` event of a release in the outbox, keyed by the release (its order holds). */
function enqueueReleaseEvent(
  tx: RegistryStore,
  release: Release,
  now: number,
  event: KafkaTopicValue<typeof KAFKA_TOPICS.registryRelease.name>['event'],
): Promise<void> {
  return enqueueEvent(
    tx,
    KAFKA_TOPICS.registryRelease.name,
    {
      eventId: randomUUID(),
      tenant: release.tenantId,
      releaseId: release.id,
      modelId: release.modelId,
      occurredAt: now,
      event,
    },
    release.id,
    now,
  );
}
