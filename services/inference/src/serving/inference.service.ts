import { createHash, randomUUID } from 'node:crypto';
import {
  Inject,
  Injectable,
  type BeforeApplicationShutdown,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { TYPED_BUS, type KafkaTopicValues, type Subscription, type TypedBus } from '@edgefl/bus';
import { KAFKA_TOPICS, type ReleaseEvent } from '@edgefl/contracts';
import { LOGGER, METRICS_REGISTRY, ReadinessRegistry } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { InferenceConfig } from '../config.js';
import { Experiments, type Arm } from '../experiments/experiments.js';
import { InferenceLogPublisher } from '../observability/inference-logs.js';
import { InferenceMetrics } from '../observability/inference-metrics.js';
import { INFERENCE_CONFIG } from '../tokens.js';
import { InferError, reasonOf } from './errors.js';
import { ModelRepository, type ServedVersion } from './model-repository.js';
import { RegistryClient } from './registry-client.js';
import { cacheKey, ResultCache } from './result-cache.js';

export type Protocol = 'http' | 'grpc' | 'bus';

/** Rows one request may carry at most (a larger tensor is refused, never split). */
export const MAX_ROWS_PER_REQUEST = 4096;

/** One inference, whatever edge it came in by. */
export interface InferCall {
  tenant: string;
  modelId: string;
  /** A named version (OIP `/versions/{v}`): bypasses A/B and shadow. */
  version?: number;
  rows: number;
  input: Float32Array;
  protocol: Protocol;
  /** The device (or request) id the A/B split hashes and the inference log names. */
  deviceId?: string | null;
}

export interface InferResult {
  modelId: string;
  version: number;
  /** rows × outputs values. */
  output: Float32Array;
  rows: number;
  outputs: number;
  cacheHit: boolean;
  arm: string | null;
  latencyMs: number;
}

/** The model's input and output, as the protocol describes them. */
export interface ModelIo {
  inputs: number;
  outputs: number;
}

/** Confidence and label of one output row: the sigmoid's max(p, 1-p) and p ≥ 0.5, or the softmax's max and argmax. */
export function confidenceOf(row: Float32Array): { confidence: number; label: string } {
  if (row.length === 1) {
    const p = row[0]!;
    return { confidence: Math.max(p, 1 - p), label: p >= 0.5 ? '1' : '0' };
  }
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return { confidence: row[best]!, label: String(best) };
}

/**
 * The cloud tier's inference path, shared by HTTP, gRPC and the bus: tenant and version resolution (with the A/B
 * split), validation of the tensor, the result cache, the model version's micro-batching queue, the inference log
 * and the metrics; shadow traffic is sent to its candidate after the answer is known, off the response path.
 */
@Injectable()
export class InferenceService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly metrics: InferenceMetrics;
  readonly repository: ModelRepository;
  readonly experiments: Experiments;
  readonly #cache: ResultCache;
  readonly #logs: InferenceLogPublisher;
  #subscription: Subscription | null = null;

  constructor(
    @Inject(INFERENCE_CONFIG) private readonly config: InferenceConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues> | null,
    readiness: ReadinessRegistry,
  ) {
    const own = config.own;
    this.metrics = new InferenceMetrics(registry);
    const client = own.registryUrl ? new RegistryClient(own.registryUrl, own.registryToken) : null;
    this.repository = new ModelRepository(own, client, this.metrics, logger);
    this.#cache = new ResultCache(own.cache, logger);
    this.#logs = new InferenceLogPublisher(bus, own.logs, this.metrics, logger);
    this.experiments = new Experiments(this.repository, this.metrics, bus, own.shadow, logger);
    if (own.cache.redisUrl) readiness.register('cache', () => this.#cache.health());
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.#cache
      .connect()
      .catch((error: Error) =>
        this.logger.warn({ err: error.message }, 'result cache: Redis not reachable at boot'),
      );
    if (!this.config.own.registryUrl) {
      this.logger.warn('INFERENCE_REGISTRY_URL is not set: no model will be served');
      return;
    }
    if (!this.bus) return;
    // each boot of each replica reads every release from the start (every replica serves every model; the state
    // it rebuilds is in memory), so its group is its own
    const group = `inference-${this.config.own.instanceId}-${randomUUID().slice(0, 8)}`;
    this.#subscription = await this.bus.subscribe({
      group,
      topics: [KAFKA_TOPICS.registryRelease.name],
      fromBeginning: true,
      maxAttempts: 3,
      handler: (record) => this.#onRelease(record.value as ReleaseEvent),
    });
    this.experiments.start();
  }

  #onRelease(event: ReleaseEvent): void {
    const manifest =
      'io.edgefl.registry.ReleaseManifest' in event.event
        ? event.event['io.edgefl.registry.ReleaseManifest']
        : null;
    if (!manifest) return;
    this.repository.offer({
      tenant: manifest.tenant,
      modelId: manifest.modelId,
      releaseId: manifest.releaseId,
      version: manifest.version,
      sha256: manifest.sha256,
      signedManifest: manifest.signedManifest,
    });
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.#subscription?.close().catch(() => undefined);
    this.experiments.stop();
    await this.repository.close();
    await this.#logs.close();
    await this.experiments.flush();
    await this.#cache.close();
  }

  /** The model a tenant's request names, for validation before anything is queued. */
  io(tenant: string, modelId: string, version?: number): ModelIo & { version: number } {
    const v = this.repository.resolve(tenant, modelId, version);
    return { inputs: v.spec.inputs, outputs: v.spec.outputs, version: v.version };
  }

  async infer(call: InferCall): Promise<InferResult> {
    const started = performance.now();
    try {
      const result = await this.#infer(call, started);
      this.metrics.requests.inc({
        model: result.modelId,
        version: String(result.version),
        protocol: call.protocol,
        outcome: 'ok',
      });
      return result;
    } catch (error) {
      const reason = reasonOf(error);
      this.metrics.errors.inc({ protocol: call.protocol, reason });
      if (reason === 'internal') this.logger.error({ err: error, modelId: call.modelId }, 'inference failed');
      throw error;
    }
  }

  async #infer(call: InferCall, started: number): Promise<InferResult> {
    let arm: Arm | null = null;
    let served: ServedVersion;
    if (call.version === undefined) {
      served = this.repository.resolve(call.tenant, call.modelId);
      arm = this.experiments.armFor(served, call.deviceId ?? null);
      if (arm) served = arm.version;
    } else {
      served = this.repository.resolve(call.tenant, call.modelId, call.version);
    }
    const { inputs, outputs } = served.spec;
    checkTensor(call.input, call.rows, inputs);
    const key = this.#cache.enabled ? cacheKey(served.modelId, served.version, call.rows, call.input) : null;
    let output = key ? await this.#cache.get(key) : undefined;
    const cacheHit = output !== undefined;
    if (key) this.metrics.cache.inc({ result: cacheHit ? 'hit' : 'miss' });
    if (!output) {
      output = await served.batcher.submit(call.input, call.rows);
      if (key) this.#cache.set(key, output);
    }
    const latencyMs = performance.now() - started;
    const armName = arm?.name ?? null;
    this.metrics.latency.observe(
      { model: served.modelId, version: String(served.version), arm: armName ?? '' },
      latencyMs / 1000,
    );
    if (armName) this.metrics.armRequests.inc({ model: served.modelId, arm: armName });
    this.#log(call, served, output, outputs, latencyMs, cacheHit, armName);
    if (call.version === undefined) this.experiments.shadow(served, call.input, call.rows, output, latencyMs);
    return {
      modelId: served.modelId,
      version: served.version,
      output,
      rows: call.rows,
      outputs,
      cacheHit,
      arm: armName,
      latencyMs,
    };
  }

  #log(
    call: InferCall,
    served: ServedVersion,
    output: Float32Array,
    outputs: number,
    latencyMs: number,
    cacheHit: boolean,
    arm: string | null,
  ): void {
    const now = Date.now();
    const inputs = served.spec.inputs;
    for (let r = 0; r < call.rows; r++) {
      const row = output.subarray(r * outputs, (r + 1) * outputs);
      const inputRow = call.input.subarray(r * inputs, (r + 1) * inputs);
      const { confidence, label } = confidenceOf(row);
      this.#logs.append({
        eventId: randomUUID(),
        tenant: served.tenant,
        deviceId: call.deviceId ?? `api:${call.protocol}`,
        modelId: served.modelId,
        modelVersion: served.version,
        prediction: Array.from(row),
        label,
        confidence,
        latencyMs,
        inputHash: createHash('sha256')
          .update(new Uint8Array(inputRow.buffer, inputRow.byteOffset, inputRow.byteLength))
          .digest('hex'),
        source: 'CLOUD',
        errorCode: null,
        cacheHit,
        arm,
        timestamp: now,
      });
    }
  }
}

/** Refuses a tensor the model cannot take: wrong row count, wrong element count, non-finite values. */
export function checkTensor(input: Float32Array, rows: number, inputs: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1)
    throw new InferError('bad-input', `the batch dimension must be at least 1 (got ${rows})`);
  if (rows > MAX_ROWS_PER_REQUEST)
    throw new InferError('bad-input', `at most ${MAX_ROWS_PER_REQUEST} rows per request (got ${rows})`);
  if (input.length !== rows * inputs)
    throw new InferError(
      'bad-input',
      `expected ${rows * inputs} values (${rows} × ${inputs}), got ${input.length}`,
    );
  for (let i = 0; i < input.length; i++)
    if (!Number.isFinite(input[i]!)) throw new InferError('bad-input', `value ${i} is not a finite number`);
}
