import { KAFKA_TOPICS } from '@edgefl/contracts';
import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { KeyProvider } from '@edgefl/keys';
import {
  buildChunkTree,
  canonicalJson,
  createDelta,
  DEFAULT_CHUNK_SIZE,
  ModelFormatError,
  sha256Hex,
} from '@edgefl/model';
import {
  CLOCK,
  KEY_PROVIDER,
  LOGGER,
  METRICS_REGISTRY,
  UnprocessableError,
  type Clock,
} from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { BlobTamperedError, type EncryptedBlobStore } from '../artifacts/blob-store.js';
import { enqueueEvent } from '../events/outbox.js';
import { StoreConflictError } from '@edgefl/service-kit';
import type { Delta, Model, ModelVersion, VersionOrigin } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { BLOB_STORE, REGISTRY_STORE } from '../tokens.js';
import { artifactPath } from './paths.js';
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

/** A version whose files are written but whose metadata is not committed yet (see VersionWriter.prepareVersion). */
export interface PreparedVersion {
  version: ModelVersion;
  deltas: Delta[];
  /** Blob keys written, removed by `discard`. */
  written: string[];
}

/**
 * Writes versions: the encrypted artifact, the deltas from the versions in the model's window, the signed artifact
 * statement (outside any transaction: `prepareVersion`), then the metadata and its ModelVersionCreated event inside
 * the caller's (`commitVersion`); `published` after the commit, `discard` when it did not happen. Also builds the
 * roll-forward version of a rolled-back release.
 */
@Injectable()
export class VersionWriter {
  private readonly listeners: Array<(modelId: string) => void> = [];
  private readonly damagedSources: Counter;

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(BLOB_STORE) private readonly blobs: EncryptedBlobStore,
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) metrics: Registry,
  ) {
    this.damagedSources = new Counter({
      name: 'edgefl_registry_damaged_artifacts_total',
      help: 'Stored artifacts found damaged (failed authentication) while building a delta from them; that delta is skipped. Alert on any increase.',
      registers: [metrics],
    });
  }

  /** Called with a model id whenever its versions change (caches drop what they hold of it). */
  onVersionsChanged(listener: (modelId: string) => void): void {
    this.listeners.push(listener);
  }

  /** Tells the listeners that a model's versions changed (a new one, or one deprecated). */
  versionsChanged(modelId: string): void {
    for (const listener of this.listeners) listener(modelId);
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
    if (await this.store.catalog.getVersion(model.id, number))
      throw new StoreConflictError(`version ${number} of model ${model.id} exists`);
    const parentVersion =
      meta.parentVersion ??
      (number > 1 && (await this.store.catalog.getVersion(model.id, number - 1)) ? number - 1 : null);
    if (parentVersion !== null) {
      if (parentVersion >= number)
        throw new UnprocessableError(`parentVersion ${parentVersion} must be lower than version ${number}`);
      if (!(await this.store.catalog.getVersion(model.id, parentVersion)))
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
    await tx.catalog.insertVersion(version);
    for (const delta of deltas) await tx.catalog.insertDelta(delta);
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
    this.versionsChanged(version.modelId);
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
    const model = await this.store.catalog.getModel(release.modelId);
    if (!model) throw new Error(`no model ${release.modelId} to roll forward`);
    const restored = await this.store.catalog.getVersion(model.id, release.restoredVersion);
    if (!restored) throw new Error(`model ${model.id} has no version ${release.restoredVersion} to restore`);
    const bytes = await this.blobs.readAll({
      tenantId: restored.tenantId,
      key: restored.blobKey,
      wrappedKey: restored.wrappedKey,
      sizeBytes: restored.sizeBytes,
    });
    if (sha256Hex(bytes) !== restored.sha256)
      throw new Error(`the stored artifact of version ${restored.version} does not match its sha256`);
    const number = (await this.store.catalog.latestVersionNumber(model.id)) + 1;
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
    const sources = (await this.store.catalog.listVersions(model.id)).filter(
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
        if (error instanceof BlobTamperedError) {
          // one damaged stored artifact must not block every later version of the model: skip its delta, and say
          // so loudly (its own downloads keep refusing it)
          this.damagedSources.inc();
          this.logger.error(
            {
              event: 'registry.artifact.damaged',
              alert: true,
              tenant: source.tenantId,
              modelId: model.id,
              version: source.version,
            },
            'stored artifact failed authentication: no delta built from it; restore or deprecate this version',
          );
          continue;
        }
        throw error;
      }
    }
    return deltas;
  }
}
