import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { OtaState, OtaStatus, ReleaseManifest as ReleaseMessage } from '@edgefl/contracts/edge';
import { applyDelta, DeltaError, ManifestError, verifyArtifact, type ReleaseManifest } from '@edgefl/model';
import { OtaError, type OtaErrorCode } from '../errors.js';
import type { LoadedModel, SessionOptions } from '../inference/model-runner.js';
import type { RegistryClient } from '../registry-client.js';
import { DEFAULT_DOWNLOAD_LIMITS, downloadResumable, type DownloadLimits } from './download.js';
import type { InstalledModel, ModelStore, StoreStep } from './model-store.js';
import type { TrustStore } from './trust.js';
import { validateModel } from './validate.js';

/** Kill points and progress marks of an update, in order (the fault-injection tests stop the process at each). */
export type OtaStep =
  | 'pending'
  | 'download-progress'
  | 'downloaded'
  | 'validating'
  | 'validated'
  | `applying:${StoreStep}`
  | 'active';

export interface OtaDevice {
  tenant: string;
  deviceId: string;
  /** The model this device runs (manifests for another model are refused: mix-and-match). */
  modelId: string;
  /** Hardware class, checked against the manifest's hardwareClasses. */
  hardwareClass?: string;
}

export interface OtaClientOptions {
  device: OtaDevice;
  store: ModelStore;
  trust: TrustStore;
  registry: RegistryClient;
  /** Receives every status (the device puts them in its offline buffer, first in line for `ota-status`). */
  report: (status: OtaStatus) => void;
  /** Called with the validated, installed model (the device hot-swaps it in). */
  activate?: (model: LoadedModel, installed: InstalledModel) => void;
  now?: () => number;
  limits?: Partial<DownloadLimits>;
  /** Download attempts per update (resuming each time) before FAILED. Default 3. */
  attempts?: number;
  /** Largest artifact or delta accepted (disk budget), default 256 MiB. */
  maxArtifactBytes?: number;
  session?: SessionOptions;
  /** Ask the registry for a delta plan (default true); false always downloads the full artifact. */
  useDeltas?: boolean;
  onStep?: (step: OtaStep) => void;
}

/** What an update ended in. */
export type OtaOutcome =
  | { state: 'ACTIVE'; version: number; viaDelta: boolean; bytesDownloaded: number; changed: boolean }
  | { state: 'FAILED'; version: number | null; code: OtaErrorCode; message: string }
  | { state: 'NONE'; reason: string };

/** Where the bytes of a verified manifest can be fetched (from the registry's answer or the release message). */
export interface ReleaseSource {
  envelope: unknown;
  releaseId: string | null;
  artifactUrl: string;
  /** Direct deltas offered (fromVersion → url); used to cross-check the registry's delta plan. */
  fullDownload: boolean;
}

const RETRYABLE = new Set<OtaErrorCode>(['truncated', 'download-failed', 'slow-retrieval']);

function asOta(error: unknown): OtaError {
  if (error instanceof OtaError) return error;
  if (error instanceof ManifestError) return new OtaError(error.reason, error.message);
  if (error instanceof DeltaError) return new OtaError('delta-failed', error.message);
  return new OtaError('apply-failed', (error as Error).message ?? String(error));
}

/**
 * The OTA client: verifies a release (The Update Framework's checks: signature by a pinned key, version, expiry,
 * declared length, model, tenant and hardware class), downloads the smallest path the registry plans (delta chain
 * or full artifact, resumed by Range), checks the sha256, runs validation inference, and installs atomically
 * keeping the previous version. Every state goes to `report`: PENDING → DOWNLOADING → VALIDATING → APPLYING →
 * ACTIVE, or FAILED with the reason. One update runs at a time; a newer request waits for it.
 */
export class OtaClient {
  readonly #o: OtaClientOptions;
  readonly #limits: DownloadLimits;
  readonly #now: () => number;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(options: OtaClientOptions) {
    this.#o = options;
    this.#limits = { ...DEFAULT_DOWNLOAD_LIMITS, ...options.limits };
    this.#now = options.now ?? Date.now;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Polls `GET /v1/devices/{id}/manifest` and applies what it names. */
  checkForUpdate(signal?: AbortSignal): Promise<OtaOutcome> {
    return this.#serial(async () => {
      const active = this.#o.store.active;
      let answer;
      try {
        answer = await this.#o.registry.manifest({
          model: this.#o.device.modelId,
          ...(active ? { current: active.version } : {}),
        });
      } catch (error) {
        return {
          state: 'FAILED',
          version: null,
          code: 'registry-unavailable',
          message: (error as Error).message,
        };
      }
      if (!answer) return { state: 'NONE', reason: 'nothing is released for this device' };
      return this.#apply(
        {
          envelope: answer.manifest,
          releaseId: answer.releaseId,
          artifactUrl: answer.artifact.url,
          fullDownload: answer.fullDownload,
        },
        signal,
      );
    });
  }

  /**
   * A release message from MQTT (`release` channel). On the device's own topic it is an assignment and is applied
   * as it is; on a broadcast topic it only says something was released, so the device asks the registry which
   * version it should run (rollout stages are decided there).
   */
  onReleaseMessage(
    message: ReleaseMessage,
    scope: 'device' | 'broadcast',
    signal?: AbortSignal,
  ): Promise<OtaOutcome> {
    if (message.modelId !== this.#o.device.modelId)
      return Promise.resolve({ state: 'NONE', reason: `release of another model (${message.modelId})` });
    const active = this.#o.store.active;
    if (active && message.version <= active.version && message.sha256 === active.sha256)
      return Promise.resolve({ state: 'NONE', reason: 'already installed' });
    if (scope === 'broadcast' || message.signedManifest === null) return this.checkForUpdate(signal);
    let envelope: unknown;
    try {
      envelope = JSON.parse(message.signedManifest);
    } catch {
      return Promise.resolve({
        state: 'FAILED',
        version: message.version,
        code: 'malformed',
        message: 'signedManifest is not JSON',
      });
    }
    return this.#serial(() =>
      this.#apply(
        { envelope, releaseId: message.releaseId, artifactUrl: message.artifactUri, fullDownload: false },
        signal,
      ),
    );
  }

  #status(
    manifest: { modelId: string; version: number },
    release: string | null,
    from: number | null,
    state: OtaState,
    extra: Partial<
      Pick<OtaStatus, 'viaDelta' | 'errorCode' | 'errorMessage' | 'bytesDownloaded' | 'bytesTotal'>
    > = {},
  ): void {
    this.#o.report({
      eventId: randomUUID(),
      tenant: this.#o.device.tenant,
      deviceId: this.#o.device.deviceId,
      modelId: manifest.modelId,
      releaseId: release,
      fromVersion: from,
      toVersion: manifest.version,
      state,
      viaDelta: extra.viaDelta ?? false,
      errorCode: extra.errorCode ?? null,
      errorMessage: extra.errorMessage ?? null,
      bytesDownloaded: extra.bytesDownloaded ?? 0,
      bytesTotal: extra.bytesTotal ?? null,
      timestamp: this.#now(),
    });
  }

  #step(step: OtaStep): void {
    this.#o.onStep?.(step);
  }

  /** TUF checks of an untrusted envelope against what this device runs. */
  async verify(envelope: unknown): Promise<ReleaseManifest> {
    const active = this.#o.store.active;
    const manifest = await this.#o.trust.verify(
      envelope,
      {
        now: new Date(this.#now()),
        modelId: this.#o.device.modelId,
        ...(active ? { installedVersion: active.version } : {}),
      },
      () => this.#o.registry.releaseKeys(),
    );
    const { tenants } = manifest.targeting;
    if (tenants.length > 0 && !tenants.includes(this.#o.device.tenant))
      throw new OtaError(
        'wrong-tenant',
        `manifest is for tenant(s) ${tenants.join(',')}, not ${this.#o.device.tenant}`,
      );
    const classes = manifest.hardwareClasses;
    if (
      classes.length > 0 &&
      !(this.#o.device.hardwareClass && classes.includes(this.#o.device.hardwareClass))
    )
      throw new OtaError(
        'wrong-hardware',
        `manifest is for hardware ${classes.join(',')}, not ${this.#o.device.hardwareClass ?? '(unset)'}`,
      );
    if (active && manifest.version === active.version && manifest.artifact.sha256 !== active.sha256)
      throw new OtaError('rollback', `version ${manifest.version} is installed with other content`);
    const max = this.#o.maxArtifactBytes ?? 256 << 20;
    if (manifest.artifact.size > max)
      throw new OtaError(
        'disk-budget',
        `artifact of ${manifest.artifact.size} bytes exceeds the ${max}-byte budget`,
      );
    return manifest;
  }

  async #apply(source: ReleaseSource, signal?: AbortSignal): Promise<OtaOutcome> {
    const store = this.#o.store;
    const active = store.active;
    const from = active?.version ?? null;
    const fallbackId = (() => {
      const signed = (source.envelope as { signed?: { modelId?: unknown; version?: unknown } } | null)
        ?.signed;
      return {
        modelId: typeof signed?.modelId === 'string' ? signed.modelId : this.#o.device.modelId,
        version:
          typeof signed?.version === 'number' && Number.isSafeInteger(signed.version) ? signed.version : 0,
      };
    })();
    let manifest: ReleaseManifest;
    try {
      manifest = await this.verify(source.envelope);
    } catch (error) {
      const e = asOta(error);
      this.#status(fallbackId, source.releaseId, from, 'FAILED', {
        errorCode: e.code,
        errorMessage: e.message,
      });
      return { state: 'FAILED', version: fallbackId.version || null, code: e.code, message: e.message };
    }
    if (active && manifest.version === active.version)
      return {
        state: 'ACTIVE',
        version: active.version,
        viaDelta: false,
        bytesDownloaded: 0,
        changed: false,
      };
    const total = manifest.artifact.size;
    this.#status(manifest, source.releaseId, from, 'PENDING', { bytesTotal: total });
    this.#step('pending');
    let bytesDownloaded = 0;
    let viaDelta = false;
    try {
      let bytes: Uint8Array | null;
      if (active && active.sha256 === manifest.artifact.sha256) {
        bytes = null; // a roll-forward that restores the bytes this device already runs
      } else {
        this.#status(manifest, source.releaseId, from, 'DOWNLOADING', { bytesTotal: total });
        const fetched = await this.#fetch(
          manifest,
          source,
          (e) =>
            this.#status(manifest, source.releaseId, from, 'DOWNLOADING', {
              bytesTotal: total,
              errorCode: e.code,
              errorMessage: `delta path failed, downloading the full artifact: ${e.message}`,
            }),
          signal,
        );
        bytes = fetched.bytes;
        bytesDownloaded = fetched.bytesDownloaded;
        viaDelta = fetched.viaDelta;
        this.#step('downloaded');
      }
      this.#status(manifest, source.releaseId, from, 'VALIDATING', {
        bytesDownloaded,
        bytesTotal: total,
        viaDelta,
      });
      this.#step('validating');
      const { model } = await validateModel(manifest, bytes ?? store.read(active!), this.#o.session);
      this.#step('validated');
      if (signal?.aborted) {
        await model.session.release().catch(() => {});
        throw new OtaError('cancelled', 'the update was cancelled');
      }
      this.#status(manifest, source.releaseId, from, 'APPLYING', {
        bytesDownloaded,
        bytesTotal: total,
        viaDelta,
      });
      let installed: InstalledModel;
      try {
        installed = store.install(
          {
            modelId: manifest.modelId,
            version: manifest.version,
            sha256: manifest.artifact.sha256,
            sizeBytes: manifest.artifact.size,
            format: manifest.artifact.format,
            releaseId: source.releaseId,
          },
          bytes,
          this.#now(),
          (s) => this.#step(`applying:${s}`),
        );
      } catch (error) {
        await model.session.release().catch(() => {});
        throw new OtaError('apply-failed', (error as Error).message);
      }
      this.#clearStaging(null);
      this.#o.activate?.(model, installed);
      if (!this.#o.activate) await model.session.release().catch(() => {});
      this.#step('active');
      this.#status(manifest, source.releaseId, from, 'ACTIVE', {
        bytesDownloaded,
        bytesTotal: total,
        viaDelta,
      });
      return { state: 'ACTIVE', version: manifest.version, viaDelta, bytesDownloaded, changed: true };
    } catch (error) {
      const e = asOta(error);
      this.#status(manifest, source.releaseId, from, 'FAILED', {
        errorCode: e.code,
        errorMessage: e.message,
        bytesDownloaded,
        bytesTotal: total,
        viaDelta,
      });
      return { state: 'FAILED', version: manifest.version, code: e.code, message: e.message };
    }
  }

  /** Removes staging files except `keep` (only one target is ever staged). */
  #clearStaging(keep: Set<string> | null): void {
    for (const name of readdirSync(this.#o.store.stagingDir)) {
      if (!keep?.has(name)) rmSync(join(this.#o.store.stagingDir, name), { force: true });
    }
  }

  #checkDisk(bytes: number): void {
    const fs = statfsSync(this.#o.store.stagingDir);
    const free = Number(fs.bavail) * Number(fs.bsize);
    if (bytes * 2 > free)
      throw new OtaError('disk-budget', `${bytes} bytes to stage, ${free} free on the data disk`);
  }

  async #download(
    url: string,
    size: number,
    sha256: string,
    name: string,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array; fetched: number }> {
    const max = this.#o.maxArtifactBytes ?? 256 << 20;
    if (size > max) throw new OtaError('disk-budget', `${size} bytes exceed the ${max}-byte budget`);
    this.#checkDisk(size);
    const path = join(this.#o.store.stagingDir, name);
    let fetched = 0;
    const attempts = this.#o.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await downloadResumable(
          this.#o.registry,
          { url, size, sha256 },
          path,
          this.#limits,
          () => this.#step('download-progress'),
          signal,
        );
        fetched += r.fetched;
        return { bytes: readFileSync(path), fetched };
      } catch (error) {
        const e = asOta(error);
        if (!RETRYABLE.has(e.code) || attempt >= attempts || signal?.aborted) throw e;
      }
    }
  }

  /** The smallest path to the manifest's bytes: the registry's delta plan from the active version, or the full file. */
  async #fetch(
    manifest: ReleaseManifest,
    source: ReleaseSource,
    onDeltaFailed: (error: OtaError) => void,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array; bytesDownloaded: number; viaDelta: boolean }> {
    const active = this.#o.store.active;
    const artifactName = `${manifest.artifact.sha256}.part`;
    let bytesDownloaded = 0;
    if (active && !source.fullDownload && this.#o.useDeltas !== false) {
      try {
        const plan = await this.#o.registry.deltaPlan(manifest.modelId, manifest.version, active.version);
        if ((plan.kind === 'direct' || plan.kind === 'chain') && plan.totalBytes < manifest.artifact.size) {
          const names = new Set(
            plan.steps.map((s) => `delta-${s.fromVersion}-${s.toVersion}-${s.sha256}.part`),
          );
          this.#clearStaging(new Set([...names, artifactName]));
          let current = this.#o.store.read(active);
          for (const step of plan.steps) {
            if (step.fromVersion === active.version && step.toVersion === manifest.version) {
              // a direct delta is in the signed manifest: its size and hash must be the signed ones
              const signed = manifest.deltas.find((d) => d.fromVersion === step.fromVersion);
              if (!signed || signed.sha256 !== step.sha256 || signed.size !== step.sizeBytes)
                throw new OtaError(
                  'hash-mismatch',
                  `delta ${step.fromVersion}→${step.toVersion} is not the one the manifest signs`,
                );
            }
            const got = await this.#download(
              step.url,
              step.sizeBytes,
              step.sha256,
              `delta-${step.fromVersion}-${step.toVersion}-${step.sha256}.part`,
              signal,
            );
            bytesDownloaded += got.fetched;
            current = applyDelta(current, got.bytes);
          }
          verifyArtifact(manifest, current);
          return { bytes: current, bytesDownloaded, viaDelta: true };
        }
      } catch (error) {
        const e = asOta(error);
        if (e.code === 'cancelled' || e.code === 'disk-budget') throw e;
        // a delta that does not apply, or does not download, is not fatal: the full artifact may still be fine
        onDeltaFailed(e);
      }
    }
    this.#clearStaging(new Set([artifactName]));
    const got = await this.#download(
      source.artifactUrl,
      manifest.artifact.size,
      manifest.artifact.sha256,
      artifactName,
      signal,
    );
    bytesDownloaded += got.fetched;
    return { bytes: got.bytes, bytesDownloaded, viaDelta: false };
  }
}
