import { KAFKA_TOPICS } from '@edgefl/contracts';
import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { KeyProvider } from '@edgefl/keys';
import {
  buildChunkTree,
  buildOnnx,
  canonicalJson,
  checkWeights,
  createDelta,
  DEFAULT_CHUNK_SIZE,
  float32FromBytes,
  ModelFormatError,
  ModelSpecError,
  parameterShapes,
  parseModelSpec,
  readOnnxTensors,
  sha256Hex,
  elementCount,
  type ModelSpec,
  type NamedTensor,
} from '@edgefl/model';
import {
  CLOCK,
  type Clock,
  ConflictError,
  GoneError,
  KEY_PROVIDER,
  LOGGER,
  NotFoundError,
  UnprocessableError,
} from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { Readable } from 'node:stream';
import type { EncryptedBlobStore } from '../artifacts/blob-store.js';
import type { RegistryConfig } from '../config.js';
import { enqueueEvent } from '../events/outbox.js';
import { StoreConflictError } from '../storage/errors.js';
import type { Delta, Model, ModelVersion, VersionOrigin } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { BLOB_STORE, REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { planDelta, type DeltaPlan } from './delta-plan.js';
import { artifactPath, deltaPath } from './paths.js';
import { RELEASE_SIGNING_KEY } from './signing.js';

export interface NewVersion {
  version?: number | undefined;
  label?: string | undefined;
  parentVersion?: number | undefined;
  metrics?: Record<string, number> | undefined;
  origin: VersionOrigin;
  roundId?: string | null | undefined;
  provenance?: Record<string, unknown> | undefined;
}

/** A version whose files are written but whose metadata is not committed yet (see ModelsService.prepareVersion). */
export interface PreparedVersion {
  version: ModelVersion;
  deltas: Delta[];
  /** Blob keys written, removed by `discard`. */
  written: string[];
}

/** Models, versions (uploaded ONNX or built from weights), artifacts and deltas. */
@Injectable()
export class ModelsService implements OnModuleInit {
  private readonly versionListeners: Array<(modelId: string) => void> = [];

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(BLOB_STORE) private readonly blobs: EncryptedBlobStore,
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.keys.createSigningKey(RELEASE_SIGNING_KEY);
  }

  /** Called with a model id whenever its versions change (caches drop what they hold of it). */
  onVersionsChanged(listener: (modelId: string) => void): void {
    this.versionListeners.push(listener);
  }

  // ── models ──────────────────────────────────────────────────────────────────────────────────────────────────
  async createModel(
    tenantId: string,
    input: { id: string; name: string; spec?: unknown; deltaWindow?: number | undefined },
  ): Promise<Model> {
    if (!(await this.store.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
    let spec: ModelSpec | null = null;
    if (input.spec !== undefined) {
      try {
        spec = parseModelSpec(input.spec);
      } catch (error) {
        if (error instanceof ModelSpecError) throw new UnprocessableError(error.message);
        throw error;
      }
    }
    try {
      return await this.store.createModel({
        id: input.id,
        tenantId,
        name: input.name,
        spec,
        deltaWindow: input.deltaWindow ?? this.config.own.deltaWindow,
        createdAt: this.clock.now(),
      });
    } catch (error) {
      if (error instanceof StoreConflictError) throw new ConflictError(`model ${input.id} already exists`);
      throw error;
    }
  }

  async model(id: string): Promise<Model> {
    const model = await this.store.getModel(id);
    if (!model) throw new NotFoundError(`no model ${id}`);
    return model;
  }

  async listModels(tenantId: string): Promise<Model[]> {
    if (!(await this.store.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
    return this.store.listModels(tenantId);
  }

  // ── versions ────────────────────────────────────────────────────────────────────────────────────────────────
  async version(modelId: string, version: number): Promise<ModelVersion> {
    await this.model(modelId);
    const found = await this.store.getVersion(modelId, version);
    if (!found) throw new NotFoundError(`model ${modelId} has no version ${version}`);
    return found;
  }

  async listVersions(modelId: string): Promise<ModelVersion[]> {
    await this.model(modelId);
    return this.store.listVersions(modelId);
  }

  /** Builds the ONNX artifact from weights (checked against the model's spec) and stores it as a new version. */
  async createFromWeights(modelId: string, weights: NamedTensor[], meta: NewVersion): Promise<ModelVersion> {
    const model = await this.model(modelId);
    const spec = this.specOf(model);
    let onnx: Uint8Array;
    try {
      onnx = buildOnnx(spec, checkWeights(spec, weights));
    } catch (error) {
      if (error instanceof ModelSpecError)
        throw new UnprocessableError(`weights do not fit the model: ${error.message}`);
      throw error;
    }
    return this.createVersion(modelId, onnx, meta);
  }

  /** Weights as raw little-endian float32 in the spec's tensor order (what the aggregator ships). */
  weightsFromF32(model: Model, bytes: Uint8Array): NamedTensor[] {
    const shapes = parameterShapes(this.specOf(model));
    const total = shapes.reduce((n, s) => n + elementCount(s.dims), 0);
    if (bytes.byteLength !== total * 4) {
      throw new UnprocessableError(
        `expected ${total} float32 values (${total * 4} bytes) for this model, got ${bytes.byteLength} bytes`,
      );
    }
    let offset = 0;
    return shapes.map(({ name, dims }) => {
      const count = elementCount(dims);
      const data = float32FromBytes(bytes, offset, count);
      offset += count * 4;
      return { name, dims, data };
    });
  }

  private specOf(model: Model): ModelSpec {
    if (model.spec === null)
      throw new UnprocessableError(
        `model ${model.id} has no spec: upload ONNX instead, or create the model with a spec`,
      );
    return parseModelSpec(model.spec);
  }

  /**
   * Stores an uploaded ONNX model as a new version: validates it (and its tensor shapes against the spec), encrypts
   * it at rest, builds deltas from the versions in the model's window, signs an artifact statement, and records
   * the version and its ModelVersionCreated event in one transaction. The same version created twice → 409.
   */
  async createVersion(modelId: string, onnx: Uint8Array, meta: NewVersion): Promise<ModelVersion> {
    const model = await this.model(modelId);
    let tensors: NamedTensor[];
    try {
      tensors = readOnnxTensors(onnx);
    } catch (error) {
      if (error instanceof ModelFormatError)
        throw new UnprocessableError(`not a usable ONNX model: ${error.message}`);
      throw error;
    }
    if (model.spec !== null) {
      try {
        checkWeights(parseModelSpec(model.spec), tensors);
      } catch (error) {
        if (error instanceof ModelSpecError)
          throw new UnprocessableError(`the model's tensors do not match its spec: ${error.message}`);
        throw error;
      }
    }
    const explicit = meta.version !== undefined;
    for (let attempt = 0; ; attempt++) {
      const number = meta.version ?? (await this.store.latestVersionNumber(modelId)) + 1;
      try {
        return await this.storeVersion(model, number, onnx, meta);
      } catch (error) {
        if (error instanceof StoreConflictError) {
          // an automatic number lost a race: take the next one; an explicit number is the caller's conflict
          if (!explicit && attempt < 3 && !/round/.test(error.message)) continue;
          throw new ConflictError(error.message);
        }
        throw error;
      }
    }
  }

  private async storeVersion(
    model: Model,
    number: number,
    onnx: Uint8Array,
    meta: NewVersion,
  ): Promise<ModelVersion> {
    const prepared = await this.prepareVersion(model, number, onnx, meta);
    try {
      await this.store.transaction((tx) => this.commitVersion(tx, prepared));
    } catch (error) {
      await this.discard(prepared);
      throw error;
    }
    this.published(prepared);
    return prepared.version;
  }

  /**
   * Everything of a new version that is not metadata, done outside any transaction: the encrypted artifact, the
   * deltas (from the versions in the model's window, plus `extraSources`), the signed artifact statement. Commit
   * it with `commitVersion` inside a transaction, then call `published`; on failure `discard` removes the files.
   */
  async prepareVersion(
    model: Model,
    number: number,
    onnx: Uint8Array,
    meta: NewVersion,
    extraSources: readonly number[] = [],
  ): Promise<PreparedVersion> {
    if (await this.store.getVersion(model.id, number))
      throw new StoreConflictError(`version ${number} of model ${model.id} exists`);
    const parentVersion =
      meta.parentVersion ??
      (number > 1 && (await this.store.getVersion(model.id, number - 1)) ? number - 1 : null);
    if (parentVersion !== null) {
      if (parentVersion >= number)
        throw new UnprocessableError(`parentVersion ${parentVersion} must be lower than version ${number}`);
      if (!(await this.store.getVersion(model.id, parentVersion)))
        throw new UnprocessableError(`model ${model.id} has no version ${parentVersion}`);
    }
    const now = this.clock.now();
    const sha256 = sha256Hex(onnx);
    const tree = buildChunkTree(onnx, DEFAULT_CHUNK_SIZE);
    const written: string[] = [];
    try {
      const base = `${model.tenantId}/${model.id}`;
      const artifact = await this.blobs.put(model.tenantId, `${base}/v${number}-${randomUUID()}.onnx`, onnx);
      written.push(artifact.key);
      const deltas = await this.buildDeltas(model, number, onnx, now, written, extraSources);
      const statement = canonicalJson({
        modelId: model.id,
        version: number,
        sha256,
        size: onnx.byteLength,
        merkleRoot: tree.root,
      });
      const signed = await this.keys.sign(RELEASE_SIGNING_KEY, statement);
      const version: ModelVersion = {
        modelId: model.id,
        version: number,
        tenantId: model.tenantId,
        label: meta.label ?? `v${number}`,
        parentVersion,
        origin: meta.origin,
        roundId: meta.roundId ?? null,
        status: 'active',
        sha256,
        sizeBytes: onnx.byteLength,
        format: 'onnx',
        chunkSize: DEFAULT_CHUNK_SIZE,
        merkleRoot: tree.root,
        blobKey: artifact.key,
        wrappedKey: artifact.wrappedKey,
        signingKeyId: signed.keyId,
        signature: Buffer.from(signed.signature).toString('base64'),
        metrics: meta.metrics ?? {},
        provenance: meta.provenance ?? {},
        createdAt: now,
      };
      return { version, deltas, written };
    } catch (error) {
      await Promise.all(written.map((key) => this.blobs.remove(key).catch(() => undefined)));
      throw error;
    }
  }

  /** Records a prepared version, its deltas and its ModelVersionCreated event in the caller's transaction. */
  async commitVersion(tx: RegistryStore, prepared: PreparedVersion): Promise<void> {
    const { version, deltas } = prepared;
    await tx.insertVersion(version);
    for (const delta of deltas) await tx.insertDelta(delta);
    await enqueueEvent(
      tx,
      KAFKA_TOPICS.modelVersion.name,
      {
        eventId: randomUUID(),
        tenant: version.tenantId,
        modelId: version.modelId,
        version: version.version,
        label: version.label,
        parentVersion: version.parentVersion,
        origin: version.origin,
        roundId: version.roundId,
        artifactUri: artifactPath(version.modelId, version.version),
        sha256: version.sha256,
        sizeBytes: version.sizeBytes,
        signingKeyId: version.signingKeyId,
        metrics: version.metrics,
        createdAt: version.createdAt,
      },
      version.modelId,
      version.createdAt,
    );
  }

  /** After the commit: caches drop the model, and the version is logged. */
  published(prepared: PreparedVersion): void {
    const { version, deltas } = prepared;
    for (const listener of this.versionListeners) listener(version.modelId);
    this.logger.info(
      {
        modelId: version.modelId,
        version: version.version,
        sizeBytes: version.sizeBytes,
        deltas: deltas.length,
      },
      'version created',
    );
  }

  /** Removes the files of a prepared version that was not committed. */
  async discard(prepared: PreparedVersion): Promise<void> {
    await Promise.all(prepared.written.map((key) => this.blobs.remove(key).catch(() => undefined)));
  }

  /**
   * The roll-forward of a rolled-back release (TUF: a device never installs a lower version, so a rollback is a
   * new, higher version): the next version number, label `rollback-of-v<bad>`, parent = the bad version, the exact
   * artifact bytes of the restored version (sha256 checked), its metrics, and provenance naming both. Deltas come
   * from the bad version and the restored one whatever the window (a device on the restored version gets an
   * all-unchanged delta of a few hundred bytes), plus the window's.
   */
  async prepareRollForward(release: {
    id: string;
    modelId: string;
    version: number;
    restoredVersion: number;
  }): Promise<PreparedVersion> {
    const model = await this.model(release.modelId);
    const restored = await this.store.getVersion(model.id, release.restoredVersion);
    if (!restored) throw new Error(`model ${model.id} has no version ${release.restoredVersion} to restore`);
    const bytes = await this.blobs.readAll({
      tenantId: restored.tenantId,
      key: restored.blobKey,
      wrappedKey: restored.wrappedKey,
      sizeBytes: restored.sizeBytes,
    });
    if (sha256Hex(bytes) !== restored.sha256)
      throw new Error(`the stored artifact of version ${restored.version} does not match its sha256`);
    const number = (await this.store.latestVersionNumber(model.id)) + 1;
    const prepared = await this.prepareVersion(
      model,
      number,
      bytes,
      {
        label: `rollback-of-v${release.version}`,
        parentVersion: release.version,
        // the restored version's own origin stays in provenance.restoredOrigin
        origin: 'ROLLBACK',
        metrics: restored.metrics,
        provenance: {
          rollbackOf: release.version,
          releaseId: release.id,
          restoredVersion: restored.version,
          restoredSha256: restored.sha256,
          restoredOrigin: restored.origin,
          restoredRoundId: restored.roundId,
          restoredProvenance: restored.provenance,
        },
      },
      [release.version, restored.version],
    );
    return prepared;
  }

  /** Lossless tensor-aware deltas (libs/model) from each active version in the window; skipped where not smaller. */
  private async buildDeltas(
    model: Model,
    number: number,
    target: Uint8Array,
    now: number,
    written: string[],
    extraSources: readonly number[] = [],
  ): Promise<Delta[]> {
    const deltas: Delta[] = [];
    const sources = (await this.store.listVersions(model.id)).filter(
      (v) =>
        v.version < number &&
        ((v.status === 'active' && v.version >= number - model.deltaWindow) ||
          extraSources.includes(v.version)),
    );
    for (const source of sources) {
      try {
        const sourceBytes = await this.blobs.readAll({
          tenantId: source.tenantId,
          key: source.blobKey,
          wrappedKey: source.wrappedKey,
          sizeBytes: source.sizeBytes,
        });
        const result = createDelta(sourceBytes, target);
        if (result.fellBackToFull || result.delta.byteLength >= target.byteLength) continue;
        const stored = await this.blobs.put(
          model.tenantId,
          `${model.tenantId}/${model.id}/d${source.version}-${number}-${randomUUID()}.delta`,
          result.delta,
        );
        written.push(stored.key);
        deltas.push({
          modelId: model.id,
          fromVersion: source.version,
          toVersion: number,
          sha256: sha256Hex(result.delta),
          sizeBytes: result.delta.byteLength,
          mode: 'lossless',
          blobKey: stored.key,
          wrappedKey: stored.wrappedKey,
          createdAt: now,
        });
      } catch (error) {
        // a source the codec cannot read (e.g. a different architecture) just gets no delta: devices download full
        if (error instanceof ModelFormatError || (error as Error).name === 'DeltaError') continue;
        throw error;
      }
    }
    return deltas;
  }

  async deprecate(modelId: string, version: number): Promise<ModelVersion> {
    const model = await this.model(modelId);
    await this.version(modelId, version);
    if (model.stableVersion === version)
      throw new ConflictError(
        `version ${version} is the stable version of ${modelId}; release another first`,
      );
    const live = await this.store.liveRelease(modelId);
    if (live && live.version === version)
      throw new ConflictError(`version ${version} is in live release ${live.id}`);
    const tenant = await this.store.getTenant(model.tenantId);
    if (tenant?.baseline?.modelId === modelId && tenant.baseline.version === version) {
      throw new ConflictError(`version ${version} is the safe baseline of tenant ${model.tenantId}`);
    }
    await this.store.setVersionStatus(modelId, version, 'deprecated');
    for (const listener of this.versionListeners) listener(modelId);
    return this.version(modelId, version);
  }

  // ── downloads ───────────────────────────────────────────────────────────────────────────────────────────────
  openArtifact(v: ModelVersion, start: number, end: number): Promise<Readable> {
    return this.blobs.read(
      { tenantId: v.tenantId, key: v.blobKey, wrappedKey: v.wrappedKey, sizeBytes: v.sizeBytes },
      start,
      end,
    );
  }

  async delta(modelId: string, from: number, to: number): Promise<Delta> {
    await this.model(modelId);
    const delta = await this.store.getDelta(modelId, from, to);
    if (!delta) throw new NotFoundError(`model ${modelId} has no delta from ${from} to ${to}`);
    return delta;
  }

  openDelta(d: Delta, tenantId: string, start: number, end: number): Promise<Readable> {
    return this.blobs.read(
      { tenantId, key: d.blobKey, wrappedKey: d.wrappedKey, sizeBytes: d.sizeBytes },
      start,
      end,
    );
  }

  /** The cheapest way from `from` to `to` (direct delta, chain, or full), with download paths. */
  async deltaPlan(modelId: string, to: number, from: number) {
    const target = await this.version(modelId, to);
    if (target.status === 'deprecated') throw new GoneError(`version ${to} of ${modelId} is deprecated`);
    if (!(await this.store.getVersion(modelId, from)))
      throw new NotFoundError(`model ${modelId} has no version ${from}`);
    const edges = (await this.store.listDeltas(modelId)).filter((d) => d.toVersion <= to);
    const plan: DeltaPlan =
      from > to
        ? { kind: 'full', steps: [], totalBytes: target.sizeBytes }
        : planDelta(from, to, target.sizeBytes, edges);
    const byPair = new Map(edges.map((d) => [`${d.fromVersion}-${d.toVersion}`, d]));
    return {
      modelId,
      fromVersion: from,
      toVersion: to,
      kind: plan.kind,
      totalBytes: plan.totalBytes,
      fullBytes: target.sizeBytes,
      artifact: { url: artifactPath(modelId, to), sha256: target.sha256, sizeBytes: target.sizeBytes },
      steps: plan.steps.map((s) => {
        const d = byPair.get(`${s.fromVersion}-${s.toVersion}`)!;
        return {
          fromVersion: d.fromVersion,
          toVersion: d.toVersion,
          sizeBytes: d.sizeBytes,
          sha256: d.sha256,
          mode: d.mode,
          url: deltaPath(modelId, d.fromVersion, d.toVersion),
        };
      }),
    };
  }
}
