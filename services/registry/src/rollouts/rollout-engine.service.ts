import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, LOGGER, METRICS_REGISTRY, type Clock } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { OutboxRelay } from '../events/outbox-relay.service.js';
import { ManifestSigner } from '../manifest/manifest-signer.service.js';
import { VersionWriter, type PreparedVersion } from '../models/version-writer.service.js';
import { StoreConflictError } from '@edgefl/service-kit';
import type { Release, Targeting } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_STORE } from '../tokens.js';
import { evaluateGates, type GateVerdict } from './gates.js';
import { enqueueManifest, enqueueTransition } from './release-events.js';
import { canMove, transition, type Move } from './rollout-state.js';
import { stableReleaseOf } from './stable.js';

/** The stage a roll-forward's manifest is published under (every device that is offered the stable version). */
const ROLLBACK_STAGE = { name: 'rollback', percentage: 100 } as const;

const NO_TARGETING: Targeting = { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] };

type Forward = { prepared: PreparedVersion; restoredVersion: number } | { failed: string } | null;

/**
 * Carries out the moves of the rollout state machine (rollout-state.ts) and the gates' verdicts. State lives in the
 * store (release rows, transitions, per-device progress, health windows), so a restart resumes every rollout and
 * its timers (soak: stage start time; device deadlines) where they were. Every transition is recorded, visible in
 * the API, and published on the bus through the outbox; concurrent movers (two replicas, an operator and the
 * scheduler) are serialised by compare-and-set on the release revision.
 */
@Injectable()
export class RolloutEngine {
  private readonly listeners: Array<(modelId: string) => void> = [];
  private readonly transitions: Counter;

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
    private readonly signer: ManifestSigner,
    private readonly relay: OutboxRelay,
    private readonly versions: VersionWriter,
  ) {
    this.transitions = new Counter({
      name: 'edgefl_registry_rollout_transitions_total',
      help: 'Rollout state transitions.',
      labelNames: ['to_state'],
      registers: [metrics],
    });
  }

  /** Called with a model id after any release of it changes (manifest caches drop it). */
  onChange(listener: (modelId: string) => void): void {
    this.listeners.push(listener);
  }

  /** A new release was stored: caches drop its model, the outbox relays its event. */
  changed(release: Release): void {
    for (const listener of this.listeners) listener(release.modelId);
    this.relay.kick();
  }

  /** What the gates say about the current stage right now (for the API and the scheduler). */
  async verdict(release: Release): Promise<GateVerdict> {
    const stage = release.stages[release.stageIndex]!;
    const [health, devices, all] = await Promise.all([
      this.store.releases.latestHealth(release.id, stage.name, release.stageStartedAt),
      this.store.releases.deviceRolloutCounts(release.id, release.stageIndex),
      this.store.releases.deviceRolloutCounts(release.id),
    ]);
    return evaluateGates({ release, health, devices, installedSoFar: all.succeeded, now: this.clock.now() });
  }

  /**
   * One transition, atomically: compare-and-set the release, append the transition, enqueue its event (and a new
   * signed manifest when a stage starts), mark the version stable on completion. Returns null when the release
   * moved meanwhile (`expect` is an older revision) or the move is not allowed from its current state.
   */
  async move(id: string, move: Omit<Move, 'forward'>, expect?: Release): Promise<Release | null> {
    for (let attempt = 0; ; attempt++) {
      const forward = move.to === 'ROLLED_BACK' ? await this.prepareRollForward(id) : null;
      const prepared = forward && 'prepared' in forward ? forward.prepared : null;
      let result: Release | null;
      try {
        result = await this.moveOnce(id, move, expect, forward);
      } catch (error) {
        if (prepared) await this.versions.discard(prepared);
        // another version took the roll-forward's number meanwhile: prepare again with the next one
        if (prepared && error instanceof StoreConflictError && attempt < 3) continue;
        throw error;
      }
      if (prepared) {
        if (result) this.versions.published(prepared);
        else await this.versions.discard(prepared);
      }
      if (result) {
        this.transitions.inc({ to_state: move.to });
        this.logger.info(
          {
            releaseId: id,
            modelId: result.modelId,
            version: result.version,
            to: move.to,
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
  private async prepareRollForward(id: string): Promise<Forward> {
    const release = await this.store.releases.getRelease(id);
    if (!release || release.state === 'PENDING' || !canMove(release.state, 'ROLLED_BACK')) return null;
    let restoredVersion = release.previousVersion;
    if (restoredVersion === null) {
      const tenant = await this.store.catalog.getTenant(release.tenantId);
      if (tenant?.baseline?.modelId === release.modelId && tenant.baseline.version !== release.version)
        restoredVersion = tenant.baseline.version;
    }
    if (restoredVersion === null) return null;
    try {
      const prepared = await this.versions.prepareRollForward({
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
   * The transition in one store transaction; on a rollback with a prepared roll-forward, also record that version,
   * make it the stable one and publish its manifest.
   */
  private moveOnce(
    id: string,
    move: Omit<Move, 'forward'>,
    expect: Release | undefined,
    forward: Forward,
  ): Promise<Release | null> {
    return this.store.transaction(async (tx) => {
      const current = await tx.releases.getRelease(id);
      if (!current || (expect && current.revision !== expect.revision)) return null;
      const v = forward && 'prepared' in forward ? forward.prepared.version : null;
      const moved = transition(
        current,
        {
          ...move,
          forward:
            forward && 'prepared' in forward
              ? {
                  version: v!.version,
                  label: v!.label,
                  sha256: v!.sha256,
                  restoredVersion: forward.restoredVersion,
                }
              : forward,
        },
        this.clock,
      );
      if (!moved || !(await tx.releases.updateRelease(id, current.revision, moved.patch))) return null;
      const { next, record, rollForward } = moved;
      const now = record.at;
      await tx.releases.insertTransition({
        ...record,
        seq: (await tx.releases.listTransitions(id)).length + 1,
      });
      await enqueueTransition(tx, next, current.state, move.to, record.reason, now, rollForward);
      if (move.to === 'COMPLETED') await tx.catalog.setStableVersion(current.modelId, current.version);
      if (move.to === 'ROLLING_OUT' && moved.restartsStage) await enqueueManifest(tx, this.signer, next, now);
      if (forward && 'prepared' in forward && rollForward) {
        await this.versions.commitVersion(tx, forward.prepared);
        await tx.catalog.setStableVersion(current.modelId, rollForward.version);
        const governing = await stableReleaseOf(tx, current.modelId, forward.restoredVersion);
        await enqueueManifest(tx, this.signer, next, now, {
          version: rollForward.version,
          stage: ROLLBACK_STAGE,
          targeting: governing?.targeting ?? NO_TARGETING,
        });
      }
      return next;
    });
  }

  // ── the scheduler's work: timers and gates ──────────────────────────────────────────────────────────────────
  /** Times out silent devices and evaluates every rolling-out release once. Safe to call concurrently across replicas. */
  async tick(): Promise<void> {
    await this.store.releases.timeOutDevices(this.clock.now());
    // a release is HALTED only between a failed gate and its rollback: one found here was left by a crash
    for (const halted of await this.store.releases.listReleases({ states: ['HALTED'] })) {
      await this.move(
        halted.id,
        { to: 'ROLLED_BACK', reason: 'automatic rollback after a failed gate (resumed)' },
        halted,
      ).catch((error: unknown) =>
        this.logger.error({ err: error, releaseId: halted.id }, 'resumed rollback failed'),
      );
    }
    for (const release of await this.store.releases.listReleases({ states: ['ROLLING_OUT'] })) {
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
      const halted = await this.move(
        release.id,
        { to: 'HALTED', reason: `stage ${stage.name}: ${verdict.reason}` },
        release,
      );
      if (halted)
        await this.move(
          release.id,
          { to: 'ROLLED_BACK', reason: 'automatic rollback after a failed gate' },
          halted,
        );
      return;
    }
    if (release.stageIndex === release.stages.length - 1) {
      await this.move(
        release.id,
        { to: 'COMPLETED', reason: `stage ${stage.name} passed all gates` },
        release,
      );
    } else {
      const next = release.stages[release.stageIndex + 1]!;
      await this.move(
        release.id,
        {
          to: 'ROLLING_OUT',
          reason: `stage ${stage.name} passed all gates; now ${next.name} (${next.percentage}%)`,
          nextStage: true,
        },
        release,
      );
    }
  }
}
