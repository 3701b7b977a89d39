import { Inject, Injectable } from '@nestjs/common';
import type { SignedManifest } from '@edgefl/model';
import { BadRequestError, CLOCK, type Clock, NotFoundError } from '@edgefl/service-kit';
import { DevicesService } from '../devices/devices.service.js';
import { VersionWriter } from '../models/version-writer.service.js';
import { artifactPath, deltaPath } from '../models/paths.js';
import { inStage, rolloutBucket, stageFloor, targetingMismatch } from '../rollouts/assignment.js';
import { RolloutEngine } from '../rollouts/rollout-engine.service.js';
import { RolloutIntake } from '../rollouts/rollout-intake.service.js';
import { restoresOf, stableReleaseOf, type Restores } from '../rollouts/stable.js';
import type { Delta, Device, Model, ModelVersion, Release, Targeting, Tenant } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_STORE } from '../tokens.js';
import { ManifestSigner } from './manifest-signer.service.js';

export type ManifestReason = 'rollout' | 'stable' | 'baseline';

/** The answer when no version applies to a device: 200, so a device can tell "nothing for you" from an error. */
export interface NothingToInstall {
  modelId: string;
  version: null;
  reason: 'nothing-to-install';
  releaseId: null;
  stage: null;
  detail: string;
}

export interface DeviceManifest {
  modelId: string;
  version: number;
  /** Why this version: in the rollout's current stage, the model's stable version, or the tenant's safe baseline. */
  reason: ManifestReason;
  releaseId: string | null;
  stage: { name: string; percentage: number } | null;
  /**
   * True when the device is older than the compatibility window and no direct delta from its version exists: only
   * the full artifact is offered.
   */
  fullDownload: boolean;
  /**
   * Set when this version is a rollback's roll-forward: the version whose exact artifact it carries (same sha256),
   * the bad version it replaces and the release rolled back. Its number is higher than both, so a device that
   * installed the bad version accepts it (TUF rollback protection), and a device on the restored version can
   * tell it already has these bytes.
   */
  restores: Restores | null;
  /** libs/model's signed manifest (TUF-style); verify with the keys at /v1/release-keys. */
  manifest: SignedManifest;
  artifact: { url: string; sha256: string; sizeBytes: number };
  deltas: Array<{ fromVersion: number; url: string; sha256: string; sizeBytes: number }>;
}

interface ModelState {
  model: Model;
  tenant: Tenant;
  live: Release | null;
  /** Targeting of the release that made the stable version stable (devices outside it fall back to the baseline). */
  stableRelease: Release | null;
  versions: Map<number, { version: ModelVersion; deltas: Delta[] } | null>;
  /** Serialised answers by variant: the hot path sends a cached string. */
  answers: Map<string, string>;
  /** The live release's lowest bucket among the devices it targets (so every stage holds ≥ 1 device), once loaded. */
  floor: Promise<number> | null;
  loadedAt: number;
}

/** How long cached rollout state may lag a change made by another replica (changes made here apply at once). */
const STATE_TTL_MS = 1_000;
const DEVICE_TTL_MS = 2_000;

/**
 * GET /v1/devices/{id}/manifest: which version a device should run now (rollout assignment by hash, targeting,
 * compatibility window, safe baseline) and its signed manifest. Built for the hot path: device, model and release
 * state are cached briefly (and dropped at once on local changes), manifests are signed once per variant, and a
 * repeat answer is a cached JSON string.
 */
@Injectable()
export class ManifestService {
  private readonly devices = new Map<string, { device: Device; at: number }>();
  private readonly models = new Map<string, Promise<ModelState>>();
  private readonly assigned = new Set<string>();

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(CLOCK) private readonly clock: Clock,
    private readonly signer: ManifestSigner,
    rollouts: RolloutEngine,
    private readonly intake: RolloutIntake,
    devices: DevicesService,
    versions: VersionWriter,
  ) {
    devices.onChange((id) => this.devices.delete(id));
    const drop = (modelId: string) => {
      this.models.delete(modelId);
      this.signer.invalidate(modelId);
    };
    rollouts.onChange(drop);
    versions.onVersionsChanged(drop);
  }

  private async device(id: string): Promise<Device> {
    const now = this.clock.now();
    const hit = this.devices.get(id);
    if (hit && now - hit.at < DEVICE_TTL_MS) return hit.device;
    const device = await this.store.devices.getDevice(id);
    if (!device) throw new NotFoundError(`no device ${id}`);
    if (this.devices.size > 100_000) this.devices.clear();
    this.devices.set(id, { device, at: now });
    return device;
  }

  private state(modelId: string): Promise<ModelState> {
    const now = this.clock.now();
    const cached = this.models.get(modelId);
    if (cached) {
      return cached.then((s) => (now - s.loadedAt < STATE_TTL_MS ? s : this.reload(modelId)));
    }
    return this.reload(modelId);
  }

  private reload(modelId: string): Promise<ModelState> {
    const loading = (async (): Promise<ModelState> => {
      const model = await this.store.catalog.getModel(modelId);
      if (!model) throw new NotFoundError(`no model ${modelId}`);
      const [tenant, live, completed] = await Promise.all([
        this.store.catalog.getTenant(model.tenantId),
        this.store.releases.liveRelease(modelId),
        model.stableVersion === null
          ? Promise.resolve([])
          : this.store.releases.listReleases({ modelId, states: ['COMPLETED'] }),
      ]);
      const stableRelease =
        model.stableVersion === null
          ? null
          : await stableReleaseOf(this.store, modelId, model.stableVersion, completed);
      return {
        model,
        tenant: tenant!,
        live,
        stableRelease,
        versions: new Map(),
        answers: new Map(),
        floor: null,
        loadedAt: this.clock.now(),
      };
    })();
    this.models.set(modelId, loading);
    loading.catch(() => this.models.delete(modelId));
    return loading;
  }

  private async versionOf(
    state: ModelState,
    version: number,
  ): Promise<{ version: ModelVersion; deltas: Delta[] } | null> {
    if (!state.versions.has(version)) {
      const found = await this.store.catalog.getVersion(state.model.id, version);
      state.versions.set(
        version,
        found
          ? { version: found, deltas: await this.store.catalog.listDeltas(state.model.id, version) }
          : null,
      );
    }
    return state.versions.get(version)!;
  }

  /** `stageFloor` of the live release, loaded with the model's state (dropped with it, at most STATE_TTL_MS stale). */
  private stageFloor(state: ModelState, live: Release): Promise<number> {
    state.floor ??= stageFloor(this.store.devices, live);
    return state.floor;
  }

  /** The JSON answer for a device (a string, cached per variant). */
  async forDevice(
    deviceId: string,
    query: { model?: string | undefined; current?: number | undefined },
  ): Promise<string> {
    const device = await this.device(deviceId);
    const modelId = query.model ?? device.modelId;
    if (!modelId) throw new BadRequestError(`device ${deviceId} has no model assigned; pass ?model=`);
    const state = await this.state(modelId);
    if (state.model.tenantId !== device.tenantId)
      throw new NotFoundError(`no model ${modelId} for device ${deviceId}`);

    let pick: {
      state: ModelState;
      version: number;
      reason: ManifestReason;
      release: Release | null;
      targeting: Targeting | null;
    } | null = null;
    const live = state.live;
    if (live && (live.state === 'ROLLING_OUT' || live.state === 'PAUSED')) {
      const stage = live.stages[live.stageIndex]!;
      const bucket = rolloutBucket(live.id, device.id);
      if (
        targetingMismatch(device, live.targeting) === null &&
        (inStage(bucket, stage.percentage) ||
          (device.modelId === modelId && bucket <= (await this.stageFloor(state, live))))
      ) {
        pick = { state, version: live.version, reason: 'rollout', release: live, targeting: live.targeting };
      }
    }
    if (!pick && state.model.stableVersion !== null) {
      const targeting = state.stableRelease?.targeting ?? null;
      if (!targeting || targetingMismatch(device, targeting) === null) {
        pick = {
          state,
          version: state.model.stableVersion,
          reason: 'stable',
          release: state.stableRelease,
          targeting,
        };
      }
    }
    if (!pick) {
      // the device cannot run (or has not been offered) this model: the tenant's safe baseline
      const baseline = state.tenant.baseline;
      // a device asking for a model explicitly (?model=) gets that model or nothing, never another model's baseline
      if (!baseline || (query.model !== undefined && baseline.modelId !== query.model)) {
        return JSON.stringify({
          modelId,
          version: null,
          reason: 'nothing-to-install',
          releaseId: null,
          stage: null,
          detail: `nothing is released for device ${deviceId} on model ${modelId}${baseline ? '' : `, and tenant ${state.tenant.id} has no safe baseline`}`,
        } satisfies NothingToInstall);
      }
      const baseState = baseline.modelId === modelId ? state : await this.state(baseline.modelId);
      pick = {
        state: baseState,
        version: baseline.version,
        reason: 'baseline',
        release: null,
        targeting: null,
      };
    }

    const current =
      pick.state.model.id === (device.modelId ?? modelId) ? (query.current ?? device.currentVersion) : null;
    const info = await this.versionOf(pick.state, pick.version);
    if (!info) throw new NotFoundError(`model ${pick.state.model.id} has no version ${pick.version}`);
    const fullDownload =
      current !== null &&
      current < pick.version - pick.state.model.deltaWindow &&
      !info.deltas.some((d) => d.fromVersion === current);
    const variant = `${pick.version}|${pick.reason}|${pick.release?.id ?? ''}|${pick.release?.stageIndex ?? ''}|${fullDownload}`;
    let answer = pick.state.answers.get(variant);
    if (answer === undefined) {
      const deltas = fullDownload ? [] : info.deltas;
      const manifest = await this.signer.signed({ version: info.version, deltas, targeting: pick.targeting });
      const stage =
        pick.reason === 'rollout' && pick.release ? pick.release.stages[pick.release.stageIndex]! : null;
      const body: DeviceManifest = {
        modelId: pick.state.model.id,
        version: pick.version,
        reason: pick.reason,
        releaseId: pick.release?.id ?? null,
        stage: stage ? { name: stage.name, percentage: stage.percentage } : null,
        fullDownload,
        restores: restoresOf(info.version),
        manifest,
        artifact: {
          url: artifactPath(pick.state.model.id, pick.version),
          sha256: info.version.sha256,
          sizeBytes: info.version.sizeBytes,
        },
        deltas: deltas.map((d) => ({
          fromVersion: d.fromVersion,
          url: deltaPath(d.modelId, d.fromVersion, d.toVersion),
          sha256: d.sha256,
          sizeBytes: d.sizeBytes,
        })),
      };
      answer = JSON.stringify(body);
      pick.state.answers.set(variant, answer);
    }
    if (pick.reason === 'rollout' && pick.release && current !== pick.version) {
      const key = `${pick.release.id}|${device.id}`;
      if (!this.assigned.has(key)) {
        if (this.assigned.size > 1_000_000) this.assigned.clear();
        this.assigned.add(key);
        await this.intake.deviceAssigned(pick.release, device.id);
      }
    }
    return answer;
  }
}
