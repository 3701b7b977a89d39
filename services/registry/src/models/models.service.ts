import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import type { KeyProvider } from '@edgefl/keys';
import {
  buildOnnx,
  checkWeights,
  elementCount,
  float32FromBytes,
  ModelFormatError,
  ModelSpecError,
  parameterShapes,
  parseModelSpec,
  onnxFloatDataToRawData,
  readOnnxTensors,
  type ModelSpec,
  type NamedTensor,
} from '@edgefl/model';
import {
  CLOCK,
  ConflictError,
  GoneError,
  KEY_PROVIDER,
  NotFoundError,
  UnprocessableError,
  type Clock,
} from '@edgefl/service-kit';
import type { Readable } from 'node:stream';
import type { EncryptedBlobStore } from '../artifacts/blob-store.js';
import type { RegistryConfig } from '../config.js';
import { StoreConflictError } from '@edgefl/service-kit';
import type { Delta, Model, ModelVersion } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { BLOB_STORE, REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { planDelta, type DeltaPlan } from './delta-plan.js';
import { artifactPath, deltaPath } from './paths.js';
import { RELEASE_SIGNING_KEY } from './signing.js';
import { assertRunnable } from './runnable.js';
import { VersionWriter, type NewVersion } from './version-writer.service.js';

/** Models, versions (uploaded ONNX or built from weights, checked; VersionWriter stores them), downloads, deltas. */
@Injectable()
export class ModelsService implements OnModuleInit {
  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(BLOB_STORE) private readonly blobs: EncryptedBlobStore,
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    private readonly writer: VersionWriter,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.keys.createSigningKey(RELEASE_SIGNING_KEY);
  }

  // ── models ──────────────────────────────────────────────────────────────────────────────────────────────────
  async createModel(
    tenantId: string,
    input: { id: string; name: string; spec?: unknown; deltaWindow?: number | undefined },
  ): Promise<Model> {
    if (!(await this.store.catalog.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
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
      return await this.store.catalog.createModel({
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
    const model = await this.store.catalog.getModel(id);
    if (!model) throw new NotFoundError(`no model ${id}`);
    return model;
  }

  async listModels(tenantId: string): Promise<Model[]> {
    if (!(await this.store.catalog.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
    return this.store.catalog.listModels(tenantId);
  }

  // ── versions ────────────────────────────────────────────────────────────────────────────────────────────────
  async version(modelId: string, version: number): Promise<ModelVersion> {
    await this.model(modelId);
    const found = await this.store.catalog.getVersion(modelId, version);
    if (!found) throw new NotFoundError(`model ${modelId} has no version ${version}`);
    return found;
  }

  async listVersions(modelId: string): Promise<ModelVersion[]> {
    await this.model(modelId);
    return this.store.catalog.listVersions(modelId);
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
  async createVersion(modelId: string, uploaded: Uint8Array, meta: NewVersion): Promise<ModelVersion> {
    const model = await this.model(modelId);
    const spec = model.spec === null ? null : parseModelSpec(model.spec);
    let tensors: NamedTensor[];
    let onnx: Uint8Array;
    try {
      // weights stored as packed float_data are moved to raw_data (same bytes), which deltas are built over
      onnx = onnxFloatDataToRawData(uploaded);
      tensors = readOnnxTensors(onnx);
    } catch (error) {
      if (error instanceof ModelFormatError)
        throw new UnprocessableError(`not a usable ONNX model: ${error.message}`);
      throw error;
    }
    if (spec !== null) {
      try {
        checkWeights(spec, tensors);
      } catch (error) {
        if (error instanceof ModelSpecError)
          throw new UnprocessableError(`the model's tensors do not match its spec: ${error.message}`);
        throw error;
      }
    }
    try {
      await assertRunnable(onnx, spec);
    } catch (error) {
      if (error instanceof ModelFormatError)
        throw new UnprocessableError(`not a usable ONNX model: ${error.message}`);
      throw error;
    }
    const explicit = meta.version !== undefined;
    for (let attempt = 0; ; attempt++) {
      const number = meta.version ?? (await this.store.catalog.latestVersionNumber(modelId)) + 1;
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
    const prepared = await this.writer.prepareVersion(model, number, onnx, meta);
    try {
      await this.store.transaction((tx) => this.writer.commitVersion(tx, prepared));
    } catch (error) {
      await this.writer.discard(prepared);
      throw error;
    }
    this.writer.published(prepared);
    return prepared.version;
  }

  async deprecate(modelId: string, version: number): Promise<ModelVersion> {
    const model = await this.model(modelId);
    await this.version(modelId, version);
    if (model.stableVersion === version)
      throw new ConflictError(
        `version ${version} is the stable version of ${modelId}; release another first`,
      );
    const live = await this.store.releases.liveRelease(modelId);
    if (live && live.version === version)
      throw new ConflictError(`version ${version} is in live release ${live.id}`);
    const tenant = await this.store.catalog.getTenant(model.tenantId);
    if (tenant?.baseline?.modelId === modelId && tenant.baseline.version === version) {
      throw new ConflictError(`version ${version} is the safe baseline of tenant ${model.tenantId}`);
    }
    await this.store.catalog.setVersionStatus(modelId, version, 'deprecated');
    this.writer.versionsChanged(modelId);
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
    const delta = await this.store.catalog.getDelta(modelId, from, to);
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
    if (!(await this.store.catalog.getVersion(modelId, from)))
      throw new NotFoundError(`model ${modelId} has no version ${from}`);
    const edges = (await this.store.catalog.listDeltas(modelId)).filter((d) => d.toVersion <= to);
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
