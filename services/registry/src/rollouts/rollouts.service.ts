import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, ConflictError, NotFoundError, UnprocessableError, type Clock } from '@edgefl/service-kit';
import type { RegistryConfig } from '../config.js';
import { StoreConflictError } from '@edgefl/service-kit';
import {
  LIVE_STATES,
  type BaselineSlis,
  type GateSpec,
  type Release,
  type RolloutState,
  type StageSpec,
  type Targeting,
} from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { defaultGates } from './gates.js';
import { enqueueTransition } from './release-events.js';
import { RolloutEngine } from './rollout-engine.service.js';
import { stageName } from './rollout-state.js';

export interface CreateRelease {
  version: number;
  stages?: Array<number | StageSpec> | undefined;
  gates?: Partial<GateSpec> | undefined;
  targeting?: Partial<Targeting> | undefined;
  baseline?: Partial<BaselineSlis> | undefined;
  /** Start rolling out now (default) or stay PENDING until started by hand. */
  start?: boolean | undefined;
}

/** Stages given as percentages or named stages, checked: increasing, ending at 100%, uniquely named. */
function checkedStages(raw: ReadonlyArray<number | StageSpec>): StageSpec[] {
  const stages = raw.map((s, i) =>
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
  return stages;
}

/** Releases: creation (and its validation), reading, and the operator's moves; the engine carries moves out. */
@Injectable()
export class RolloutsService {
  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    private readonly engine: RolloutEngine,
  ) {}

  async create(modelId: string, input: CreateRelease): Promise<Release> {
    const model = await this.store.catalog.getModel(modelId);
    if (!model) throw new NotFoundError(`no model ${modelId}`);
    const version = await this.store.catalog.getVersion(modelId, input.version);
    if (!version) throw new UnprocessableError(`model ${modelId} has no version ${input.version}`);
    if (version.status !== 'active') throw new UnprocessableError(`version ${input.version} is deprecated`);
    if (model.stableVersion === input.version)
      throw new ConflictError(`version ${input.version} is already the stable version`);
    if (model.stableVersion !== null && input.version < model.stableVersion)
      throw new UnprocessableError(
        `version ${input.version} is lower than the stable version ${model.stableVersion}: devices refuse a lower version (TUF rollback protection); upload it again as a new version`,
      );
    const stages = checkedStages(input.stages ?? this.config.own.rollout.stages);
    const previous =
      model.stableVersion !== null ? await this.store.catalog.getVersion(modelId, model.stableVersion) : null;
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
      gates: { ...defaultGates(this.config.own.rollout), ...input.gates },
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
        await tx.releases.insertRelease(release);
        await tx.releases.insertTransition({
          releaseId: release.id,
          seq: 1,
          fromState: 'PENDING',
          toState: 'PENDING',
          stage: stages[0]!,
          reason: 'created',
          at: now,
        });
        await enqueueTransition(tx, release, 'PENDING', 'PENDING', 'created', now);
      });
    } catch (error) {
      if (error instanceof StoreConflictError)
        throw new ConflictError(`model ${modelId} already has a live release`);
      throw error;
    }
    this.engine.changed(release);
    if (input.start ?? true)
      return (await this.engine.move(release.id, { to: 'ROLLING_OUT', reason: 'started' })) ?? release;
    return release;
  }

  async get(id: string): Promise<Release> {
    const release = await this.store.releases.getRelease(id);
    if (!release) throw new NotFoundError(`no release ${id}`);
    return release;
  }

  list(filter: { modelId?: string; tenantId?: string; live?: boolean }): Promise<Release[]> {
    return this.store.releases.listReleases({
      ...(filter.modelId !== undefined ? { modelId: filter.modelId } : {}),
      ...(filter.tenantId !== undefined ? { tenantId: filter.tenantId } : {}),
      ...(filter.live ? { states: LIVE_STATES } : {}),
    });
  }

  transitionsOf(id: string) {
    return this.store.releases.listTransitions(id);
  }

  deviceCounts(id: string) {
    return this.store.releases.deviceRolloutCounts(id);
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
    const moved = await this.engine.move(id, { to, reason }, release);
    if (!moved) throw new ConflictError(`release ${id} changed meanwhile; retry`);
    return moved;
  }
}
