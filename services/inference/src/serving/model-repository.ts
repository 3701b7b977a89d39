import { ed25519KeyId, ManifestError, verifyManifest, type ModelSpec } from '@edgefl/model';
import { loadModel, runSession, validateModel, type LoadedModel } from '@edgefl/device-sdk';
import type { Logger } from 'pino';
import type { BatchingSettings, InferenceOwnConfig } from '../config.js';
import type { InferenceMetrics } from '../observability/inference-metrics.js';
import { Batcher } from './batcher.js';
import { InferError } from './errors.js';
import { RegistryFetchError, type RegistryClient } from './registry-client.js';

/** A model version loaded, warmed and taking traffic (or draining after a swap). */
export interface ServedVersion {
  modelId: string;
  tenant: string;
  version: number;
  /** The release it came with. */
  releaseId: string;
  label: string;
  sha256: string;
  spec: ModelSpec;
  batcher: Batcher;
  sessions: LoadedModel[];
  loadedAt: number;
}

/** A release the registry published: the version to serve, with the signed manifest that vouches for it. */
export interface ReleaseToServe {
  tenant: string;
  modelId: string;
  releaseId: string;
  version: number;
  sha256: string;
  /** The signed manifest envelope as JSON (libs/model), or null from writers that predate the field. */
  signedManifest: string | null;
}

interface ModelState {
  modelId: string;
  tenant: string;
  serving: ServedVersion | null;
  /** Loaded versions (the serving one included), oldest first. */
  versions: Map<number, ServedVersion>;
  desired: ReleaseToServe | null;
  loading: Promise<void> | null;
  /** The last refusal per version (reason and message), for the model's metadata and logs. */
  refused: Map<number, { reason: string; message: string }>;
}

/** Why a version was refused (the metric label). */
type Refusal =
  | 'no-manifest'
  | 'bad-manifest'
  | 'untrusted'
  | 'bad-signature'
  | 'expired'
  | 'rollback'
  | 'wrong-model'
  | 'mismatch'
  | 'tenant-mismatch'
  | 'download'
  | 'hash-mismatch'
  | 'validation-failed';

class Refused extends Error {
  constructor(
    readonly reason: Refusal,
    message: string,
  ) {
    super(message);
  }
}

const MANIFEST_REASONS: Record<string, Refusal> = {
  malformed: 'bad-manifest',
  'unknown-key': 'untrusted',
  'bad-signature': 'bad-signature',
  expired: 'expired',
  rollback: 'rollback',
  'wrong-model': 'wrong-model',
};

/**
 * The models this replica serves, per tenant. A release becomes a loaded version only after its manifest's signature
 * verifies against the trusted release keys and the downloaded artifact matches the manifest's size and sha256, and
 * after every session of its pool loaded and passed validation (the manifest's canary, or seeded probes) and warm-up.
 * Only then does it take traffic (the swap): new requests go to it, requests already queued on the old version
 * finish there, and an evicted version is released only once its queue is empty. A version that fails anything is
 * refused, counted and logged; the serving version keeps serving.
 */
export class ModelRepository {
  readonly #models = new Map<string, ModelState>();
  #trusted: Map<string, Uint8Array> | null = null;
  #closed = false;
  #pinned: (modelId: string) => ReadonlySet<number> = () => new Set();

  constructor(
    private readonly own: InferenceOwnConfig,
    private readonly registry: RegistryClient | null,
    private readonly metrics: InferenceMetrics,
    private readonly logger: Logger,
  ) {
    if (own.releaseKeys) {
      this.#trusted = new Map(
        own.releaseKeys.map((b64) => {
          const raw = new Uint8Array(Buffer.from(b64, 'base64'));
          return [ed25519KeyId(raw), raw] as const;
        }),
      );
    }
  }

  /** Versions an experiment uses are never evicted while it names them. */
  pinnedBy(pinned: (modelId: string) => ReadonlySet<number>): void {
    this.#pinned = pinned;
  }

  /** Batching settings of a model (the defaults with its overrides). */
  batchingOf(modelId: string): BatchingSettings {
    return { ...this.own.batching, ...this.own.batchingOverrides[modelId] };
  }

  /** Whether every model that has a release to load has a serving version (or was refused). */
  get ready(): boolean {
    if (this.#closed) return false;
    for (const state of this.#models.values()) if (state.serving === null && state.loading) return false;
    return true;
  }

  /** Every model, for listings. */
  list(): Array<{ modelId: string; tenant: string; serving: number | null; loaded: number[] }> {
    return [...this.#models.values()].map((s) => ({
      modelId: s.modelId,
      tenant: s.tenant,
      serving: s.serving?.version ?? null,
      loaded: [...s.versions.keys()],
    }));
  }

  /**
   * The version to run for a tenant's request: the serving one, or the named loaded one. Another tenant's model is
   * answered exactly like a model that does not exist (a tenant cannot learn other tenants' model names).
   */
  resolve(tenant: string, modelId: string, version?: number): ServedVersion {
    const state = this.#models.get(modelId);
    if (!state || state.tenant !== tenant) throw new InferError('not-found', `unknown model '${modelId}'`);
    if (version !== undefined) {
      const v = state.versions.get(version);
      if (!v)
        throw new InferError(
          'not-found',
          `version ${version} of model '${modelId}' is not loaded (loaded: ${[...state.versions.keys()].join(', ') || 'none'})`,
        );
      return v;
    }
    if (!state.serving) {
      const last = [...state.refused.values()].at(-1);
      throw new InferError(
        'unavailable',
        `model '${modelId}' has no version that passed verification and validation yet${last ? ` (last refusal: ${last.message})` : ''}`,
      );
    }
    return state.serving;
  }

  /** The loaded versions of a model (oldest first), for its metadata; same tenant rule as resolve. */
  versionsOf(tenant: string, modelId: string): ServedVersion[] {
    const state = this.#models.get(modelId);
    if (!state || state.tenant !== tenant) throw new InferError('not-found', `unknown model '${modelId}'`);
    return [...state.versions.values()];
  }

  /** A release to serve (from the release topic). Loads in the background; the latest release wins. */
  offer(release: ReleaseToServe): void {
    if (this.#closed) return;
    let state = this.#models.get(release.modelId);
    if (!state) {
      state = {
        modelId: release.modelId,
        tenant: release.tenant,
        serving: null,
        versions: new Map(),
        desired: null,
        loading: null,
        refused: new Map(),
      };
      this.#models.set(release.modelId, state);
    }
    if (state.tenant !== release.tenant) {
      this.#refuse(
        state,
        release,
        new Refused(
          'tenant-mismatch',
          `release ${release.releaseId} names tenant ${release.tenant}, the model belongs to ${state.tenant}`,
        ),
      );
      return;
    }
    if (state.serving?.version === release.version) return; // a later stage of the release being served
    state.desired = release;
    state.loading ??= this.#reconcile(state).finally(() => {
      state.loading = null;
    });
  }

  /** Resolves when no load is in progress (tests and the drain). */
  async settled(): Promise<void> {
    for (;;) {
      const pending = [...this.#models.values()].map((s) => s.loading).filter((p) => p !== null);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  async #reconcile(state: ModelState): Promise<void> {
    while (state.desired && !this.#closed) {
      const release = state.desired;
      state.desired = null;
      if (state.serving?.version === release.version) continue;
      try {
        const loaded = state.versions.get(release.version) ?? (await this.#load(state, release));
        if (this.#closed) {
          await this.#unload(loaded);
          return;
        }
        this.#swap(state, loaded);
      } catch (error) {
        const refused =
          error instanceof Refused
            ? error
            : new Refused('validation-failed', `could not load: ${(error as Error).message}`);
        this.#refuse(state, release, refused);
      }
    }
  }

  #refuse(state: ModelState, release: ReleaseToServe, refused: Refused): void {
    state.refused.delete(release.version);
    state.refused.set(release.version, { reason: refused.reason, message: refused.message });
    if (state.refused.size > 32) state.refused.delete(state.refused.keys().next().value!);
    this.metrics.modelLoads.inc({ outcome: 'refused', reason: refused.reason });
    this.logger.warn(
      {
        modelId: release.modelId,
        version: release.version,
        releaseId: release.releaseId,
        reason: refused.reason,
        serving: state.serving?.version ?? null,
      },
      `refused model version: ${refused.message}`,
    );
  }

  async #trustedKeys(refresh: boolean): Promise<Map<string, Uint8Array>> {
    if (this.own.releaseKeys) return this.#trusted!;
    if (!this.#trusted || refresh) {
      if (!this.registry) throw new Refused('untrusted', 'no release keys are pinned and no registry is set');
      try {
        this.#trusted = await this.registry.releaseKeys();
      } catch (error) {
        throw new Refused('download', (error as Error).message);
      }
      this.logger.info(
        { keyIds: [...this.#trusted.keys()] },
        'trusting the release keys the registry publishes (INFERENCE_RELEASE_KEYS pins them)',
      );
    }
    return this.#trusted;
  }

  async #verify(state: ModelState, release: ReleaseToServe) {
    if (release.signedManifest === null)
      throw new Refused('no-manifest', 'the release event carries no signed manifest');
    let envelope: unknown;
    try {
      envelope = JSON.parse(release.signedManifest);
    } catch {
      throw new Refused('bad-manifest', 'the signed manifest is not JSON');
    }
    const options = (trustedKeys: Map<string, Uint8Array>) => ({
      trustedKeys,
      modelId: release.modelId,
      ...(state.serving ? { installedVersion: state.serving.version } : {}),
    });
    try {
      try {
        return verifyManifest(envelope, options(await this.#trustedKeys(false)));
      } catch (error) {
        // a key the registry rotated in since the keys were read: read them once more
        if (!(error instanceof ManifestError) || error.reason !== 'unknown-key' || this.own.releaseKeys)
          throw error;
        return verifyManifest(envelope, options(await this.#trustedKeys(true)));
      }
    } catch (error) {
      if (error instanceof ManifestError)
        throw new Refused(MANIFEST_REASONS[error.reason] ?? 'bad-manifest', error.message);
      throw error;
    }
  }

  async #load(state: ModelState, release: ReleaseToServe): Promise<ServedVersion> {
    const started = performance.now();
    const manifest = await this.#verify(state, release);
    if (manifest.version !== release.version || manifest.artifact.sha256 !== release.sha256)
      throw new Refused(
        'mismatch',
        `the signed manifest is for version ${manifest.version} (${manifest.artifact.sha256.slice(0, 12)}…), the release names ${release.version} (${release.sha256.slice(0, 12)}…)`,
      );
    if (manifest.targeting.tenants.length > 0 && !manifest.targeting.tenants.includes(state.tenant))
      throw new Refused('tenant-mismatch', `the manifest does not target tenant ${state.tenant}`);
    if (!this.registry) throw new Refused('download', 'no registry is set (INFERENCE_REGISTRY_URL)');
    let bytes: Uint8Array;
    try {
      bytes = await this.registry.artifact(manifest);
    } catch (error) {
      if (error instanceof RegistryFetchError)
        throw new Refused(
          error.reason === 'hash-mismatch' ||
            error.reason === 'length-mismatch' ||
            error.reason === 'too-large'
            ? 'hash-mismatch'
            : 'download',
          error.message,
        );
      throw error;
    }
    const sessionOptions = { intraOpThreads: this.own.intraOpThreads, warmupRuns: this.own.warmupRuns };
    const sessions: LoadedModel[] = [];
    try {
      try {
        sessions.push((await validateModel(manifest, bytes, sessionOptions)).model);
      } catch (error) {
        throw new Refused('validation-failed', (error as Error).message);
      }
      const identity = {
        modelId: manifest.modelId,
        version: manifest.version,
        sha256: manifest.artifact.sha256,
      };
      for (let i = 1; i < this.own.poolSize; i++)
        sessions.push(await loadModel(identity, bytes, sessionOptions));
    } catch (error) {
      await Promise.all(sessions.map((s) => s.session.release().catch(() => undefined)));
      throw error;
    }
    const spec = sessions[0]!.spec;
    const labels = { model: manifest.modelId, version: String(manifest.version) };
    const batching = this.batchingOf(manifest.modelId);
    const batcher = new Batcher(
      sessions.map((m) => ({ run: (input: Float32Array, rows: number) => runSession(m, input, rows) })),
      { inputs: spec.inputs, outputs: spec.outputs, ...batching },
      {
        onBatch: (rows) => this.metrics.batchRows.observe({ model: manifest.modelId }, rows),
        onDepth: (depth) => this.metrics.queueDepth.set(labels, depth),
      },
    );
    this.metrics.modelLoads.inc({ outcome: 'loaded', reason: '' });
    this.logger.info(
      {
        modelId: manifest.modelId,
        version: manifest.version,
        sessions: sessions.length,
        loadMs: Math.round(performance.now() - started),
      },
      'model version verified, validated and warmed',
    );
    return {
      modelId: manifest.modelId,
      tenant: state.tenant,
      version: manifest.version,
      releaseId: release.releaseId,
      label: manifest.label,
      sha256: manifest.artifact.sha256,
      spec,
      batcher,
      sessions,
      loadedAt: Date.now(),
    };
  }

  #swap(state: ModelState, next: ServedVersion): void {
    const previous = state.serving;
    state.versions.delete(next.version);
    state.versions.set(next.version, next);
    state.serving = next;
    this.metrics.swaps.inc({ model: state.modelId });
    this.logger.info(
      { modelId: state.modelId, version: next.version, previous: previous?.version ?? null },
      'serving a new model version',
    );
    // keep the serving version and the newest `keepVersions` others; the rest drain, then release their sessions
    const pinned = this.#pinned(state.modelId);
    const others = [...state.versions.values()].filter((v) => v !== next && !pinned.has(v.version));
    for (const old of others.slice(0, Math.max(0, others.length - this.own.keepVersions))) {
      state.versions.delete(old.version);
      void this.#unload(old);
    }
  }

  async #unload(v: ServedVersion): Promise<void> {
    await v.batcher.drain();
    await Promise.all(v.sessions.map((s) => s.session.release().catch(() => undefined)));
    this.metrics.queueDepth.remove({ model: v.modelId, version: String(v.version) });
  }

  /** Stops loading; every loaded version drains and releases its sessions. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.settled();
    const all = [...this.#models.values()].flatMap((s) => [...s.versions.values()]);
    this.#models.clear();
    await Promise.all(all.map((v) => this.#unload(v)));
  }
}
