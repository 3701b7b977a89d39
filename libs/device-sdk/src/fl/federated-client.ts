import { randomUUID } from 'node:crypto';
import type {
  FlUpdate,
  MessageAck,
  RoundOpened,
  SecAggMessage,
  UpdatePayloadKind,
} from '@edgefl/contracts/edge';
import {
  clipL2InPlace,
  encodeFloat16,
  encodeFloat32,
  encodeInt8,
  encodeSparse,
  l2Norm,
  localDp,
  TopKCompressor,
  type NormalSource,
} from '@edgefl/fl';
import { encodeSealed, seal, type Ed25519SigningKey } from '@edgefl/keys';
import type { ModelSpec, NamedTensor } from '@edgefl/model';
import { DeviceError } from '../errors.js';
import { paramsFromTensors } from '../training/mlp.js';
import { Trainer, type Dataset, type OptimizerName } from '../training/trainer.js';
import {
  eligibility,
  type DeviceConditions,
  type EligibilityPolicy,
  type IneligibleReason,
} from './eligibility.js';

export type UpdateCompression = 'float32' | 'float16' | 'int8' | 'topk';

/** What a round needs from the device around it. */
export interface FederatedEnvironment {
  tenant: string;
  deviceId: string;
  key: Ed25519SigningKey;
  /** The model the device runs now: spec, weights and version (the round's base version must equal it). */
  currentModel: () => { spec: ModelSpec; weights: NamedTensor[]; version: number } | null;
  /** The device's private training data for this model (never leaves the device). */
  data: (spec: ModelSpec) => Dataset | null;
  conditions: () => DeviceConditions;
  /**
   * Sends an FL update durably (the device's offline buffer, kept until its PUBACK or the deadline) and resolves
   * with the gateway's MessageAck whose correlation id is the update id or the event id.
   */
  sendUpdate: (update: FlUpdate, deadline: number, signal: AbortSignal) => Promise<MessageAck>;
  now?: () => number;
}

/** The round a secure-aggregation client takes part in. */
export interface SecureAggregationRound {
  tenant: string;
  roundId: string;
  deviceId: string;
  opened: RoundOpened;
}

/**
 * The client side of secure aggregation (`SecAggParticipant` runs libs/fl's protocol): it answers the aggregator's
 * phases on the `secagg` channel and calls `update` (train, take the delta, clip, add local DP noise) when the
 * aggregator asks for the masked input. Resolves with the gateway's MessageAck of the masked input once the device
 * has answered every phase. The federated client calls it for rounds whose secureAggregation.mode is MASKED.
 */
export interface SecureAggregationClient {
  participate(
    round: SecureAggregationRound,
    update: () => Promise<readonly Float32Array[]>,
    channel: SecAggChannel,
    signal: AbortSignal,
  ): Promise<MessageAck>;
}

/** What the secure-aggregation client uses to talk: its messages out (QoS 1 + MessageAck), the aggregator's in. */
export interface SecAggChannel {
  send(message: SecAggMessage, signal: AbortSignal): Promise<MessageAck>;
  /**
   * Subscribes to the aggregator's messages for one round (messages that arrived before, e.g. ahead of the round
   * invitation, are delivered first); returns the unsubscribe function.
   */
  onMessage(roundId: string, listener: (message: SecAggMessage) => void): () => void;
  /** Signs with the device key (Ed25519). */
  sign(bytes: Uint8Array): Uint8Array;
}

/** What an update transform knows about the update it is given. */
export interface UpdateTransformContext {
  readonly roundId: string;
  readonly round: RoundOpened;
  readonly deviceId: string;
  readonly spec: ModelSpec;
  /** The base weights the update is relative to (the round's base version). */
  readonly base: readonly NamedTensor[];
  /** The local training data the update was trained on. */
  readonly data: Dataset;
  /** Wall time the local training took, in ms. */
  readonly trainingMs: number;
  /** Aborts with the round (deadline, RoundClosed, cancel): a transform that waits must stop waiting. */
  readonly signal: AbortSignal;
}

/**
 * Replaces the update a device computed (trained − base weights, layers in spec order) before it is clipped,
 * noised, compressed, sealed or masked and signed: what it returns goes through the same steps, so the round's clip
 * norm and local DP still hold for what leaves the device. Must return layers of the same lengths with finite
 * values (otherwise the round fails with `error`). Uses: custom local post-processing, a device's own regularisation
 * of its updates, fault and attack models in simulations (libs/sim).
 */
export type UpdateTransform = (
  update: Float32Array[],
  context: UpdateTransformContext,
) => Float32Array[] | Promise<Float32Array[]>;

export interface FederatedOptions {
  policy?: EligibilityPolicy;
  /** Replaces the computed update before clipping and noise (see UpdateTransform). */
  updateTransform?: UpdateTransform;
  optimizer?: OptimizerName;
  compression?: UpdateCompression;
  /** Share of coordinates top-k keeps (default 0.1); error feedback keeps the rest for the next round. */
  topKFraction?: number;
  /** Stop training this long before the deadline, to leave time to send (default 10% of the time left, ≥ 200 ms). */
  sendMarginMs?: number;
  secureAggregation?: SecureAggregationClient;
  secAggChannel?: SecAggChannel;
  /** Noise source for local DP (node:crypto by default; a seeded one only for tests). */
  normal?: NormalSource;
  seed?: number;
}

export type RoundOutcome =
  | { status: 'declined'; roundId: string; reasons: IneligibleReason[] }
  | {
      status: 'accepted';
      roundId: string;
      updateId: string;
      sampleCount: number;
      payloadBytes: number;
      updateNorm: number;
    }
  | {
      status: 'rejected';
      roundId: string;
      updateId: string;
      errorCode: string | null;
      errorMessage: string | null;
    }
  | {
      status: 'failed';
      roundId: string;
      reason: 'deadline' | 'cancelled' | 'no-data' | 'no-model' | 'unsupported' | 'error';
      message: string;
    };

/** μ of FedProx from the round: strategyParams.mu (or proximalMu); 0 otherwise. */
export function proximalMuOf(round: RoundOpened): number {
  const mu = round.strategyParams['mu'] ?? round.strategyParams['proximalMu'] ?? 0;
  return Number.isFinite(mu) && mu >= 0 ? mu : 0;
}

/** What an update transform returned must have the update's layer lengths and finite values. */
function checkTransformed(update: unknown, shape: readonly number[]): asserts update is Float32Array[] {
  if (!Array.isArray(update) || update.length !== shape.length)
    throw new DeviceError(
      'invalid-update',
      `the update transform returned ${Array.isArray(update) ? update.length : typeof update} layers; the model has ${shape.length}`,
    );
  for (const [l, layer] of (update as unknown[]).entries()) {
    if (!(layer instanceof Float32Array) || layer.length !== shape[l])
      throw new DeviceError(
        'invalid-update',
        `the update transform's layer ${l} is not a Float32Array of ${shape[l]} values`,
      );
    for (let j = 0; j < layer.length; j++)
      if (!Number.isFinite(layer[j]))
        throw new DeviceError(
          'invalid-update',
          `the update transform's layer ${l} has a non-finite value at ${j}`,
        );
  }
}

/** The byte encodings of libs/fl (see its compression section). */
function compress(update: Float32Array[], how: UpdateCompression, topk: TopKCompressor | null): Uint8Array {
  switch (how) {
    case 'float32':
      return encodeFloat32(update);
    case 'float16':
      return encodeFloat16(update);
    case 'int8':
      return encodeInt8(update);
    case 'topk':
      return encodeSparse(topk!.compress(update));
  }
}

/**
 * The federated client: answers round invitations per its eligibility policy, trains on local data (the round's
 * epochs, batch size, learning rate and FedProx μ), computes the update (trained − base weights), clips it to the
 * round's clip norm, adds local DP noise when the round asks (libs/fl), compresses it (libs/fl), seals it with HPKE
 * to the round key (or hands it to the secure-aggregation client for MASKED rounds), signs the payload with the
 * device key, sends it with QoS 1 and waits for the gateway's MessageAck. Honours the deadline and cancellation
 * (RoundClosed, or the caller's signal). Only the update leaves the device, never the data.
 */
export class FederatedClient {
  readonly #env: FederatedEnvironment;
  readonly #o: FederatedOptions;
  readonly #now: () => number;
  readonly #running = new Map<string, AbortController>();
  #topk: TopKCompressor | null = null;

  constructor(env: FederatedEnvironment, options: FederatedOptions = {}) {
    this.#env = env;
    this.#o = options;
    this.#now = env.now ?? Date.now;
  }

  /** Rounds in progress. */
  get active(): string[] {
    return [...this.#running.keys()];
  }

  /** Cancels a round in progress (its RoundClosed arrived, or the device is stopping). */
  cancel(roundId: string): boolean {
    const c = this.#running.get(roundId);
    c?.abort();
    return c !== undefined;
  }

  cancelAll(): void {
    for (const c of this.#running.values()) c.abort();
  }

  async onRoundOpened(roundId: string, round: RoundOpened, signal?: AbortSignal): Promise<RoundOutcome> {
    const env = this.#env;
    if (this.#running.has(roundId))
      return { status: 'failed', roundId, reason: 'error', message: 'round already in progress' };
    const check = eligibility(this.#o.policy ?? {}, env.conditions(), round, env.deviceId, this.#now());
    if (!check.eligible) return { status: 'declined', roundId, reasons: check.reasons };
    const controller = new AbortController();
    this.#running.set(roundId, controller);
    const left = round.deadline - this.#now();
    const deadline = AbortSignal.timeout(Math.max(1, Math.round(left)));
    const stop = AbortSignal.any([controller.signal, deadline, ...(signal ? [signal] : [])]);
    const failed = (
      reason: Extract<RoundOutcome, { status: 'failed' }>['reason'],
      message: string,
    ): RoundOutcome => ({
      status: 'failed',
      roundId,
      reason,
      message,
    });
    try {
      const model = env.currentModel();
      if (!model) return failed('no-model', 'no model is installed');
      const data = env.data(model.spec);
      if (!data || data.rows === 0) return failed('no-data', 'no local training data');
      const mode = round.secureAggregation.mode;
      if (mode === 'MASKED' && !(this.#o.secureAggregation && this.#o.secAggChannel))
        return failed('unsupported', 'the round needs secure aggregation and no client for it is configured');
      if (mode === 'HPKE' && !round.secureAggregation.roundPublicKey)
        return failed('unsupported', 'an HPKE round without a round public key');
      // training stops early enough to leave time to send
      const margin = this.#o.sendMarginMs ?? Math.max(200, left * 0.1);
      const trainStop = AbortSignal.any([stop, AbortSignal.timeout(Math.max(1, Math.round(left - margin)))]);
      let norm = 0;
      const computeUpdate = async (): Promise<Float32Array[]> => {
        const { training } = round;
        const trainingStart = this.#now();
        const trainer = new Trainer(model.spec, training.batchSize);
        const result = trainer.train(model.weights, data, {
          epochs: training.localEpochs,
          batchSize: training.batchSize,
          learningRate: training.learningRate,
          optimizer: this.#o.optimizer ?? 'sgd',
          proximalMu: proximalMuOf(round),
          seed: this.#o.seed ?? 1,
          signal: trainStop,
        });
        if (stop.aborted)
          throw controller.signal.aborted || signal?.aborted
            ? new DeviceError('cancelled', 'the round was cancelled')
            : new DeviceError('timeout', 'the deadline passed during training');
        const base = paramsFromTensors(model.spec, model.weights);
        let update: Float32Array[] = paramsFromTensors(model.spec, result.weights).map((w, l) => {
          const b = base[l]!;
          for (let j = 0; j < w.length; j++) w[j] = w[j]! - b[j]!;
          return w;
        });
        const transform = this.#o.updateTransform;
        if (transform) {
          const shape = update.map((l) => l.length);
          update = await transform(update, {
            roundId,
            round,
            deviceId: env.deviceId,
            spec: model.spec,
            base: model.weights,
            data,
            trainingMs: this.#now() - trainingStart,
            signal: stop,
          });
          if (stop.aborted)
            throw controller.signal.aborted || signal?.aborted
              ? new DeviceError('cancelled', 'the round was cancelled')
              : new DeviceError('timeout', 'the deadline passed during the update transform');
          checkTransformed(update, shape);
        }
        const { dp } = round;
        // the norm before clipping (reported; the update sent is at most clipNorm, plus the noise)
        norm = l2Norm(update);
        if (dp.clipNorm > 0) {
          if (dp.mode === 'LOCAL' && dp.noiseMultiplier > 0)
            update = localDp(
              update,
              { clipNorm: dp.clipNorm, noiseMultiplier: dp.noiseMultiplier },
              this.#o.normal,
            );
          else clipL2InPlace(update, dp.clipNorm);
        }
        return update;
      };
      if (mode === 'MASKED') {
        // the protocol's key phases run first; the update is computed when the masked input is asked for
        const ack = await this.#o.secureAggregation!.participate(
          { tenant: env.tenant, roundId, deviceId: env.deviceId, opened: round },
          computeUpdate,
          this.#o.secAggChannel!,
          stop,
        );
        return ack.accepted
          ? {
              status: 'accepted',
              roundId,
              updateId: ack.correlationId,
              sampleCount: data.rows,
              payloadBytes: 0,
              updateNorm: norm,
            }
          : {
              status: 'rejected',
              roundId,
              updateId: ack.correlationId,
              errorCode: ack.errorCode,
              errorMessage: ack.errorMessage,
            };
      }
      let update: Float32Array[];
      try {
        update = await computeUpdate();
      } catch (error) {
        if (error instanceof DeviceError && error.code === 'cancelled')
          return failed('cancelled', error.message);
        if (error instanceof DeviceError && error.code === 'timeout')
          return failed('deadline', error.message);
        throw error;
      }
      const how = this.#o.compression ?? 'float16';
      if (how === 'topk') {
        const shape = update.map((l) => l.length);
        const d = shape.reduce((a, b) => a + b, 0);
        if (!this.#topk || this.#topk.shape.join() !== shape.join())
          this.#topk = new TopKCompressor(shape, Math.max(1, Math.round(d * (this.#o.topKFraction ?? 0.1))));
      }
      const encoded = compress(update, how, this.#topk);
      let payload: Uint8Array = encoded;
      let payloadKind: UpdatePayloadKind = 'PLAIN';
      if (mode === 'HPKE') {
        const sealed = await seal(round.secureAggregation.roundPublicKey!, encoded, {
          info: `edgefl/fl.update/${roundId}`,
          aad: env.deviceId,
        });
        payload = encodeSealed(sealed);
        payloadKind = 'SEALED';
      }
      const updateId = randomUUID();
      const message: FlUpdate = {
        eventId: randomUUID(),
        tenant: env.tenant,
        updateId,
        roundId,
        deviceId: env.deviceId,
        sampleCount: data.rows,
        payloadKind,
        payload: Buffer.from(payload),
        signature: Buffer.from(env.key.sign(payload)),
        signingKeyId: env.key.keyId,
        createdAt: this.#now(),
      };
      const ack = await env.sendUpdate(message, round.deadline, stop);
      return ack.accepted
        ? {
            status: 'accepted',
            roundId,
            updateId,
            sampleCount: data.rows,
            payloadBytes: payload.byteLength,
            updateNorm: norm,
          }
        : { status: 'rejected', roundId, updateId, errorCode: ack.errorCode, errorMessage: ack.errorMessage };
    } catch (error) {
      if (controller.signal.aborted || signal?.aborted) return failed('cancelled', 'the round was cancelled');
      if (deadline.aborted)
        return failed('deadline', 'the deadline passed before the gateway acknowledged the update');
      if (error instanceof DeviceError && error.code === 'timeout') return failed('deadline', error.message);
      return failed('error', (error as Error).message);
    } finally {
      this.#running.delete(roundId);
    }
  }
}
