import { randomUUID } from 'node:crypto';
import type { InferenceReply } from '@edgefl/contracts/edge';
import { DeviceError } from '../errors.js';
import type { MqttLink } from '../transport/mqtt-link.js';
import type { CloudAnswer, EscalationRequest, Escalator } from './tiered.js';

/** Escalation over MQTT: an InferenceRequest on `infer`, the InferenceReply on `infer/reply` (same correlation id). */
export class MqttEscalator implements Escalator {
  constructor(
    private readonly link: MqttLink,
    private readonly device: { tenant: string; deviceId: string },
    private readonly now: () => number = Date.now,
  ) {}

  async infer(request: EscalationRequest, signal: AbortSignal): Promise<CloudAnswer> {
    const correlationId = randomUUID();
    const payload = this.link.encode('io.edgefl.inference.InferenceRequest', {
      eventId: randomUUID(),
      tenant: this.device.tenant,
      deviceId: this.device.deviceId,
      correlationId,
      modelId: request.modelId,
      edgeModelVersion: request.edgeVersion,
      input: Array.from(request.input),
      shape: request.shape,
      edgeConfidence: request.edgeConfidence,
      timestamp: this.now(),
    });
    const reply = await this.link.request<InferenceReply>(
      this.link.topic('infer'),
      payload,
      correlationId,
      // the signal carries the caller's timeout; this bound only guards a caller that passed none
      60_000,
      signal,
    );
    if (reply.errorCode)
      throw new DeviceError('rejected', `cloud tier: ${reply.errorCode} ${reply.errorMessage ?? ''}`.trim());
    return {
      prediction: Float32Array.from(reply.prediction),
      confidence: reply.confidence,
      label: reply.label,
      modelVersion: reply.modelVersion,
    };
  }
}

/**
 * Escalation over HTTP to the inference service's Open Inference Protocol endpoint (KServe / Triton v2):
 * `POST {baseUrl}/v2/models/{model}/infer` with one FP32 input tensor.
 */
export class OipEscalator implements Escalator {
  constructor(
    private readonly baseUrl: string,
    private readonly options: {
      inputName?: string;
      headers?: () => Promise<Record<string, string>>;
      fetch?: typeof fetch;
    } = {},
  ) {}

  async infer(
    request: Pick<EscalationRequest, 'modelId' | 'input' | 'shape'>,
    signal: AbortSignal,
  ): Promise<CloudAnswer> {
    const res = await (this.options.fetch ?? fetch)(
      `${this.baseUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(request.modelId)}/infer`,
      {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/json', ...(await this.options.headers?.()) },
        body: JSON.stringify({
          id: randomUUID(),
          inputs: [
            {
              name: this.options.inputName ?? 'input',
              shape: request.shape,
              datatype: 'FP32',
              data: Array.from(request.input),
            },
          ],
        }),
      },
    );
    const body = (await res.json().catch(() => null)) as {
      model_version?: string;
      outputs?: Array<{ datatype?: string; data?: unknown }>;
      error?: string;
    } | null;
    if (!res.ok || !body)
      throw new DeviceError('rejected', `cloud tier: HTTP ${res.status} ${body?.error ?? ''}`.trim());
    const data = body.outputs?.[0]?.data;
    if (!Array.isArray(data) || !data.every((v) => typeof v === 'number'))
      throw new DeviceError('rejected', 'cloud tier: the answer has no numeric output tensor');
    const version = Number(body.model_version);
    return {
      prediction: Float32Array.from(data as number[]),
      confidence: null,
      label: null,
      modelVersion: Number.isSafeInteger(version) ? version : null,
    };
  }
}
