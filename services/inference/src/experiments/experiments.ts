import { createHash, randomUUID } from 'node:crypto';
import type { KafkaTopicValues, TypedBus } from '@edgefl/bus';
import { KAFKA_TOPICS, type RolloutHealth } from '@edgefl/contracts';
import { build as buildHistogram, type Histogram } from 'hdr-histogram-js';
import type { Logger } from 'pino';
import type { InferenceMetrics } from '../observability/inference-metrics.js';
import { InferError } from '../serving/errors.js';
import type { ModelRepository, ServedVersion } from '../serving/model-repository.js';

/** One arm of an A/B split: a loaded version and its share of traffic. */
export interface ArmSpec {
  name: string;
  version: number;
  weight: number;
}

/** What an operator sets per model (PUT /v1/models/{model}/experiment). */
export interface ExperimentSpec {
  ab: { arms: ArmSpec[] } | null;
  shadow: { version: number; releaseId: string | null; sampleRate: number } | null;
}

export interface Arm {
  name: string;
  version: ServedVersion;
}

interface ShadowWindow {
  start: number;
  samples: number;
  disagreements: number;
  errors: number;
  dropped: number;
  confidenceSum: number;
  shadowLatency: Histogram;
  servingLatency: Histogram;
}

/** What a shadow comparison has seen in the current window. */
export interface ShadowStats {
  version: number;
  servingVersion: number | null;
  samples: number;
  disagreements: number;
  disagreementRate: number;
  errors: number;
  dropped: number;
  p95LatencyMs: number;
  servingP95LatencyMs: number;
}

interface ModelExperiment {
  tenant: string;
  spec: ExperimentSpec;
  /** Cumulative weights of the arms, for the sticky hash. */
  cumulative: number[];
  servingVersion: number | null;
  window: ShadowWindow | null;
}

const newWindow = (): ShadowWindow => ({
  start: Date.now(),
  samples: 0,
  disagreements: 0,
  errors: 0,
  dropped: 0,
  confidenceSum: 0,
  shadowLatency: buildHistogram({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  }),
  servingLatency: buildHistogram({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  }),
});

/** A sticky bucket in [0, 1) for a key (the same device always lands in the same arm). */
export function stickyBucket(modelId: string, key: string): number {
  const digest = createHash('sha256').update(`${modelId}\0${key}`).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

/** Index of the arm a bucket falls in, given the arms' weights. */
export function armIndex(bucket: number, weights: readonly number[]): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let edge = 0;
  for (let i = 0; i < weights.length; i++) {
    edge += weights[i]! / total;
    if (bucket < edge) return i;
  }
  return weights.length - 1;
}

function labelOf(row: Float32Array): number {
  if (row.length === 1) return row[0]! >= 0.5 ? 1 : 0;
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

/**
 * Experiments without app updates: an A/B split of a model's traffic over loaded versions by a sticky hash of the
 * device (or request) id, with per-arm metrics; and shadow traffic to a candidate version — the same inputs, after
 * the serving version answered, off the response path; its outputs are discarded, its disagreement (a different
 * predicted label on any row) and latency against the serving version are counted and published every window as
 * an `edgefl.rollout.health.v1` record of stage `shadow` (accuracy = agreement with the serving version), the
 * input the registry's gates read.
 */
export class Experiments {
  readonly #models = new Map<string, ModelExperiment>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly repository: ModelRepository,
    private readonly metrics: InferenceMetrics,
    private readonly bus: TypedBus<KafkaTopicValues> | null,
    private readonly options: { windowMs: number },
    private readonly logger: Logger,
  ) {
    repository.pinnedBy((modelId) => {
      const spec = this.#models.get(modelId)?.spec;
      return new Set([
        ...(spec?.ab?.arms.map((a) => a.version) ?? []),
        ...(spec?.shadow ? [spec.shadow.version] : []),
      ]);
    });
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), this.options.windowMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  get(tenant: string, modelId: string): ExperimentSpec & { shadowStats: ShadowStats | null } {
    this.repository.versionsOf(tenant, modelId); // tenant check
    const e = this.#models.get(modelId);
    return {
      ab: e?.spec.ab ?? null,
      shadow: e?.spec.shadow ?? null,
      shadowStats: e ? this.#stats(e) : null,
    };
  }

  /** Sets (or with both null, clears) a model's experiment; every version it names must be loaded. */
  set(tenant: string, modelId: string, spec: ExperimentSpec): void {
    const loaded = new Set(this.repository.versionsOf(tenant, modelId).map((v) => v.version));
    const named = [
      ...(spec.ab?.arms.map((a) => a.version) ?? []),
      ...(spec.shadow ? [spec.shadow.version] : []),
    ];
    const missing = named.filter((v) => !loaded.has(v));
    if (missing.length > 0)
      throw new InferError(
        'not-found',
        `version(s) ${missing.join(', ')} of model '${modelId}' are not loaded (loaded: ${[...loaded].join(', ')})`,
      );
    if (spec.ab && new Set(spec.ab.arms.map((a) => a.name)).size !== spec.ab.arms.length)
      throw new InferError('bad-input', 'arm names must be distinct');
    if (!spec.ab && !spec.shadow) {
      this.#models.delete(modelId);
      return;
    }
    const weights = spec.ab?.arms.map((a) => a.weight) ?? [];
    this.#models.set(modelId, {
      tenant,
      spec,
      cumulative: weights,
      servingVersion: null,
      window: spec.shadow ? newWindow() : null,
    });
  }

  /** The arm a request goes to (null: no split, or the arm's version is gone: the serving version answers). */
  armFor(serving: ServedVersion, key: string | null): Arm | null {
    const e = this.#models.get(serving.modelId);
    if (!e?.spec.ab || e.tenant !== serving.tenant) return null;
    const arms = e.spec.ab.arms;
    const bucket = key === null ? Math.random() : stickyBucket(serving.modelId, key);
    const arm = arms[armIndex(bucket, e.cumulative)]!;
    try {
      return {
        name: arm.name,
        version: this.repository.resolve(serving.tenant, serving.modelId, arm.version),
      };
    } catch {
      return null;
    }
  }

  /** After the serving version answered: the same input to the shadow version, compared, off the response path. */
  shadow(
    served: ServedVersion,
    input: Float32Array,
    rows: number,
    output: Float32Array,
    latencyMs: number,
  ): void {
    const e = this.#models.get(served.modelId);
    if (!e?.spec.shadow || !e.window || e.spec.shadow.version === served.version) return;
    if (e.spec.shadow.sampleRate < 1 && Math.random() >= e.spec.shadow.sampleRate) return;
    let candidate: ServedVersion;
    try {
      candidate = this.repository.resolve(served.tenant, served.modelId, e.spec.shadow.version);
    } catch {
      return;
    }
    const window = e.window;
    e.servingVersion = served.version;
    // never let shadow traffic fill the queue real requests wait in
    if (candidate.batcher.depth >= 0.5 * this.repository.batchingOf(served.modelId).maxQueue) {
      window.dropped++;
      this.metrics.shadow.inc({ model: served.modelId, outcome: 'dropped' });
      return;
    }
    const started = performance.now();
    candidate.batcher.submit(input, rows).then(
      (shadowOut) => {
        const shadowMs = performance.now() - started;
        const outputs = candidate.spec.outputs;
        let disagree = outputs !== served.spec.outputs;
        let confidence = 0;
        for (let r = 0; r < rows && !disagree; r++) {
          const a = output.subarray(r * outputs, (r + 1) * outputs);
          const b = shadowOut.subarray(r * outputs, (r + 1) * outputs);
          if (labelOf(a) !== labelOf(b)) disagree = true;
          confidence += b.length === 1 ? Math.max(b[0]!, 1 - b[0]!) : Math.max(...b);
        }
        window.samples++;
        window.confidenceSum += confidence / rows;
        if (disagree) window.disagreements++;
        window.shadowLatency.recordValue(Math.max(1, Math.round(shadowMs * 1000)));
        window.servingLatency.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
        this.metrics.shadow.inc({ model: served.modelId, outcome: disagree ? 'disagree' : 'agree' });
        this.metrics.shadowLatency.observe({ model: served.modelId, role: 'shadow' }, shadowMs / 1000);
        this.metrics.shadowLatency.observe({ model: served.modelId, role: 'serving' }, latencyMs / 1000);
      },
      () => {
        window.errors++;
        this.metrics.shadow.inc({ model: served.modelId, outcome: 'error' });
      },
    );
  }

  #stats(e: ModelExperiment): ShadowStats | null {
    if (!e.spec.shadow || !e.window) return null;
    const w = e.window;
    return {
      version: e.spec.shadow.version,
      servingVersion: e.servingVersion,
      samples: w.samples,
      disagreements: w.disagreements,
      disagreementRate: w.samples === 0 ? 0 : w.disagreements / w.samples,
      errors: w.errors,
      dropped: w.dropped,
      p95LatencyMs: w.samples === 0 ? 0 : w.shadowLatency.getValueAtPercentile(95) / 1000,
      servingP95LatencyMs: w.samples === 0 ? 0 : w.servingLatency.getValueAtPercentile(95) / 1000,
    };
  }

  /** Publishes each shadow window that saw traffic as rollout health, and starts a new window. */
  async flush(): Promise<void> {
    const records: RolloutHealth[] = [];
    for (const [modelId, e] of this.#models) {
      const stats = this.#stats(e);
      if (!stats || !e.window || stats.samples + stats.errors === 0) continue;
      const w = e.window;
      e.window = newWindow();
      const attempts = stats.samples + stats.errors;
      records.push({
        eventId: randomUUID(),
        tenant: e.tenant,
        releaseId: e.spec.shadow!.releaseId ?? `shadow:${modelId}:${stats.version}`,
        modelId,
        version: stats.version,
        stage: 'shadow',
        windowStart: w.start,
        windowEnd: Date.now(),
        devicesReporting: 0,
        otaFailureRate: 0,
        inferenceErrorRate: stats.errors / attempts,
        p95LatencyMs: stats.p95LatencyMs,
        accuracy: stats.samples === 0 ? null : 1 - stats.disagreementRate,
        meanConfidence: stats.samples === 0 ? 0 : w.confidenceSum / stats.samples,
        driftScore: 0,
        baselineVersion: null,
        baselineDevicesReporting: null,
        baselineInferenceErrorRate: null,
        baselineP95LatencyMs: null,
        baselineAccuracy: null,
        baselineMeanConfidence: null,
      });
    }
    if (records.length === 0 || !this.bus) return;
    try {
      await this.bus.publish(
        KAFKA_TOPICS.rolloutHealth.name,
        records.map((value) => ({ value })),
      );
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'shadow statistics: publish failed');
    }
  }
}
