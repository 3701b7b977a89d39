import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { OnEvent, TYPED_BUS, type KafkaTopicValues, type TypedBus, type TypedRecord } from '@edgefl/bus';
import { KAFKA_TOPICS, type InferenceReply, type InferenceRequest } from '@edgefl/contracts';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import { confidenceOf, InferenceService } from '../serving/inference.service.js';
import { InferError, reasonOf } from '../serving/errors.js';

/** The fields of a reply that say what was answered. */
type ReplyResult =
  'modelVersion' | 'prediction' | 'label' | 'confidence' | 'errorCode' | 'errorMessage' | 'timestamp';

/** Replicas share the requests: one group, each request answered once. */
const GROUP = 'inference-escalations';

/**
 * Devices' escalations (MQTT request/reply through the gateway): each `InferenceRequest` on the bus is answered by an
 * `InferenceReply` with the same correlation id, the tenant and device it came from (the gateway routes it to
 * `edgefl/<tenant>/<device>/infer/reply`). A request that cannot be answered — unknown model, another tenant's
 * model, a wrong shape, an overloaded queue — gets a reply with `errorCode` and `errorMessage` (the device falls back
 * to its own answer) and is counted; it is never retried forever nor dead-lettered for the caller's mistakes.
 */
@Injectable()
export class EscalationService {
  constructor(
    private readonly inference: InferenceService,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @OnEvent(KAFKA_TOPICS.inferenceRequest.name, { group: GROUP, maxAttempts: 5, dedupe: true })
  async onRequest(record: TypedRecord<KafkaTopicValues, 'edgefl.inference.request.v1'>): Promise<void> {
    const request: InferenceRequest = record.value;
    const reply = await this.answer(request);
    this.inference.metrics.escalations.inc({ outcome: reply.errorCode ?? 'ok' });
    // a failed publish throws: the bus retries the record (the reply's eventId is fresh, the device dedupes on
    // the correlation id)
    await this.bus.publish(KAFKA_TOPICS.inferenceReply.name, [{ value: reply }]);
  }

  async answer(request: InferenceRequest): Promise<InferenceReply> {
    const base = {
      eventId: randomUUID(),
      tenant: request.tenant,
      deviceId: request.deviceId,
      correlationId: request.correlationId,
      modelId: request.modelId,
    };
    let rows: number;
    try {
      rows = this.#rowsOf(request);
    } catch (error) {
      // refused before it reached the inference path, which counts its own refusals
      this.inference.metrics.errors.inc({ protocol: 'bus', reason: reasonOf(error) });
      return this.#refusal(base, error);
    }
    try {
      const result = await this.inference.infer({
        tenant: request.tenant,
        modelId: request.modelId,
        rows,
        input: Float32Array.from(request.input),
        protocol: 'bus',
        deviceId: request.deviceId,
      });
      const { confidence, label } = confidenceOf(result.output.subarray(0, result.outputs));
      return {
        ...base,
        modelVersion: result.version,
        prediction: Array.from(result.output),
        label,
        confidence,
        errorCode: null,
        errorMessage: null,
        timestamp: Date.now(),
      };
    } catch (error) {
      return this.#refusal(base, error);
    }
  }

  /** Rows of a request whose shape fits the model ([rows, inputs], or [inputs] for one row). */
  #rowsOf(request: InferenceRequest): number {
    const shape = request.shape;
    const io = this.inference.io(request.tenant, request.modelId);
    const rows = shape.length === 2 ? shape[0]! : shape.length === 1 ? 1 : -1;
    if (rows < 1 || shape[shape.length - 1] !== io.inputs)
      throw new InferError(
        'bad-input',
        `unexpected shape [${shape.join(',')}], the model expects [-1,${io.inputs}]`,
      );
    return rows;
  }

  #refusal(base: Omit<InferenceReply, ReplyResult>, error: unknown): InferenceReply {
    const code = reasonOf(error);
    if (code === 'internal') this.logger.error({ err: error }, 'escalation failed');
    return {
      ...base,
      modelVersion: null,
      prediction: [],
      label: null,
      confidence: null,
      errorCode: code,
      errorMessage: code === 'internal' ? 'internal error' : (error as Error).message,
      timestamp: Date.now(),
    };
  }
}
