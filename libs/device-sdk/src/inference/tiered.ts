import { hash, randomUUID } from 'node:crypto';
import type { InferenceLog, InferenceSource } from '@edgefl/contracts/edge';
import { DeviceError } from '../errors.js';
import type { LoadedModel, ModelRunner } from './model-runner.js';
import { runSession } from './model-runner.js';

export type PredictionSource = 'edge' | 'cloud' | 'edge_fallback';

export interface Prediction {
  prediction: Float32Array;
  confidence: number;
  /** Predicted class (index as text, or the name from `labels`). */
  label: string;
  source: PredictionSource;
  modelId: string;
  modelVersion: number;
  /** Index of the cascade stage that answered (the OTA-managed model is the last stage). */
  stage: number;
  latencyMs: number;
  /** Hex SHA-256 of the input's float32 bytes (logged instead of the input). */
  inputHash: string;
  /** Why the cloud tier was not used after an escalation (timeout, transport, its own error). */
  escalationError: string | null;
}

/** What the cloud tier answers for an escalated input. */
export interface CloudAnswer {
  prediction: Float32Array;
  confidence: number | null;
  label: string | null;
  modelVersion: number | null;
}

/** The cloud tier: MQTT `infer` request/reply through the gateway, or HTTP to the inference service (OIP). */
export interface Escalator {
  infer(request: EscalationRequest, signal: AbortSignal): Promise<CloudAnswer>;
}

/** An input the device escalates, with what it knows of its own answer. */
export interface EscalationRequest {
  modelId: string;
  input: Float32Array;
  shape: number[];
  edgeVersion: number;
  edgeConfidence: number;
}

/** A cheaper model run before the OTA-managed one; it answers when its confidence reaches `threshold`. */
export interface CascadeStage {
  model: LoadedModel;
  threshold: number;
}

export interface TieredOptions {
  tenant: string;
  deviceId: string;
  runner: ModelRunner;
  /** Stages before the runner's model, cheapest first. */
  cascade?: CascadeStage[];
  /** Below this confidence the input is escalated to the cloud tier (when an escalator is set). Default 0.6. */
  escalationThreshold?: number;
  escalator?: Escalator;
  /** Cloud timeout; on timeout or error the local answer is used (`edge_fallback`). Default 2 s. */
  escalationTimeoutMs?: number;
  labels?: string[];
  /** Every prediction, as the InferenceLog the device buffers and publishes. */
  log?: (record: InferenceLog) => void;
  /** Low-confidence inputs (the device keeps them only when its privacy policy allows hard samples). */
  hardSample?: (input: Float32Array, prediction: Prediction) => void;
  now?: () => number;
}

/** Confidence of one output row: max(p, 1 − p) for a single sigmoid, the largest class probability otherwise. */
export function confidenceOf(row: Float32Array): { confidence: number; index: number } {
  if (row.length === 1) {
    const p = row[0]!;
    return { confidence: Math.max(p, 1 - p), index: p >= 0.5 ? 1 : 0 };
  }
  let index = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[index]!) index = i;
  return { confidence: row[index]!, index };
}

export function inputHash(input: Float32Array): string {
  // crypto.hash: the one-shot digest, cheaper than createHash for a short input
  return hash('sha256', new Uint8Array(input.buffer, input.byteOffset, input.byteLength), 'hex');
}

const SOURCE: Record<PredictionSource, InferenceSource> = {
  edge: 'EDGE',
  cloud: 'CLOUD',
  edge_fallback: 'EDGE_FALLBACK',
};

/**
 * Tiered inference: an optional cascade of local models with per-stage thresholds, then the OTA-managed model;
 * below the escalation threshold the input goes to the cloud tier with a timeout, and the local answer is used
 * when the cloud fails (`edge_fallback`). Every prediction is logged (model version, latency, confidence, source,
 * input hash).
 */
export class TieredInference {
  readonly #o: TieredOptions;
  readonly #now: () => number;

  constructor(options: TieredOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  #label(index: number): string {
    return this.#o.labels?.[index] ?? String(index);
  }

  /** One input row. */
  async predict(input: Float32Array, signal?: AbortSignal): Promise<Prediction> {
    const started = performance.now();
    const hash = inputHash(input);
    let answer: { output: Float32Array; model: LoadedModel; stage: number } | null = null;
    const stages = this.#o.cascade ?? [];
    for (let s = 0; s < stages.length; s++) {
      const stage = stages[s]!;
      const output = await runSession(stage.model, input, 1);
      if (confidenceOf(output).confidence >= stage.threshold) {
        answer = { output, model: stage.model, stage: s };
        break;
      }
    }
    if (!answer) {
      const run = await this.#o.runner.run(input, 1);
      answer = { ...run, stage: stages.length };
    }
    const { confidence, index } = confidenceOf(answer.output);
    let result: Prediction = {
      prediction: answer.output,
      confidence,
      label: this.#label(index),
      source: 'edge',
      modelId: answer.model.modelId,
      modelVersion: answer.model.version,
      stage: answer.stage,
      latencyMs: 0,
      inputHash: hash,
      escalationError: null,
    };
    const threshold = this.#o.escalationThreshold ?? 0.6;
    if (confidence < threshold) {
      this.#o.hardSample?.(input, result);
      if (this.#o.escalator) result = await this.#escalate(input, result, signal);
    }
    result.latencyMs = performance.now() - started;
    this.#log(result, null);
    return result;
  }

  async #escalate(input: Float32Array, local: Prediction, signal?: AbortSignal): Promise<Prediction> {
    const timeout = AbortSignal.timeout(this.#o.escalationTimeoutMs ?? 2_000);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const cloud = await this.#o.escalator!.infer(
        {
          modelId: local.modelId,
          input,
          shape: [1, input.length],
          edgeVersion: local.modelVersion,
          edgeConfidence: local.confidence,
        },
        combined,
      );
      if (cloud.prediction.length !== local.prediction.length || !cloud.prediction.every(Number.isFinite))
        throw new DeviceError('rejected', 'the cloud answer has the wrong shape or non-finite values');
      const picked = confidenceOf(cloud.prediction);
      return {
        ...local,
        prediction: cloud.prediction,
        confidence: cloud.confidence ?? picked.confidence,
        label: cloud.label ?? this.#label(picked.index),
        source: 'cloud',
        modelVersion: cloud.modelVersion ?? local.modelVersion,
      };
    } catch (error) {
      const reason = timeout.aborted ? 'timeout' : error instanceof DeviceError ? error.code : 'error';
      return { ...local, source: 'edge_fallback', escalationError: `${reason}: ${(error as Error).message}` };
    }
  }

  #log(p: Prediction, errorCode: string | null): void {
    this.#o.log?.({
      eventId: randomUUID(),
      tenant: this.#o.tenant,
      deviceId: this.#o.deviceId,
      modelId: p.modelId,
      modelVersion: p.modelVersion,
      prediction: Array.from(p.prediction),
      label: p.label,
      confidence: p.confidence,
      latencyMs: p.latencyMs,
      inputHash: p.inputHash,
      source: SOURCE[p.source],
      errorCode:
        errorCode ??
        (p.escalationError
          ? `ESCALATION_${p.escalationError.split(':')[0]!.toUpperCase().replace(/-/g, '_')}`
          : null),
      cacheHit: null,
      arm: null,
      timestamp: this.#now(),
    });
  }
}
