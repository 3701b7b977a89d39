import * as ort from 'onnxruntime-node';
import {
  buildOnnx,
  decodeArtifact,
  isArtifact,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
  readOnnxSpec,
  type ModelSpec,
} from '@edgefl/model';
import { DeviceError } from '../errors.js';

/** A loaded model: its ONNX Runtime session, spec and identity. */
export interface LoadedModel {
  modelId: string;
  version: number;
  sha256: string;
  spec: ModelSpec;
  session: ort.InferenceSession;
}

export interface SessionOptions {
  /** Intra-op threads per session (default 1: many devices may share one process, e.g. the fleet simulator). */
  intraOpThreads?: number;
  /** Warm-up runs before a session takes traffic (default 3). */
  warmupRuns?: number;
}

/** ONNX bytes for a verified model file: ONNX as is, an edgefl artifact container rebuilt with libs/model's builder. */
export function onnxBytesOf(bytes: Uint8Array): { onnx: Uint8Array; spec: ModelSpec } {
  if (isArtifact(bytes)) {
    const artifact = decodeArtifact(bytes);
    if (!artifact.spec) throw new DeviceError('no-model', 'the artifact carries no model spec');
    return { onnx: buildOnnx(artifact.spec, artifact.tensors), spec: artifact.spec };
  }
  const spec = readOnnxSpec(bytes);
  if (!spec) throw new DeviceError('no-model', 'the ONNX model carries no edgefl.spec metadata');
  return { onnx: bytes, spec };
}

/** Creates a session and runs it `warmupRuns` times on zeros, so its first real request pays no set-up cost. */
export async function loadModel(
  identity: { modelId: string; version: number; sha256: string },
  bytes: Uint8Array,
  options: SessionOptions = {},
): Promise<LoadedModel> {
  const { onnx, spec } = onnxBytesOf(bytes);
  const session = await ort.InferenceSession.create(onnx, {
    intraOpNumThreads: options.intraOpThreads ?? 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const zeros = new Float32Array(spec.inputs);
  for (let i = 0; i < (options.warmupRuns ?? 3); i++) {
    await session.run({ [ONNX_INPUT_NAME]: new ort.Tensor('float32', zeros, [1, spec.inputs]) });
  }
  return { ...identity, spec, session };
}

/** Runs `rows` rows through a session: rows × outputs. */
export async function runSession(
  model: LoadedModel,
  input: Float32Array,
  rows: number,
): Promise<Float32Array> {
  if (input.length !== rows * model.spec.inputs)
    throw new DeviceError('bad-input', `expected ${rows} × ${model.spec.inputs} values, got ${input.length}`);
  const out = await model.session.run({
    [ONNX_INPUT_NAME]: new ort.Tensor('float32', input, [rows, model.spec.inputs]),
  });
  return out[ONNX_OUTPUT_NAME]!.data as Float32Array;
}

interface Slot {
  model: LoadedModel;
  inflight: number;
  retired: boolean;
}

/**
 * The model that serves, swappable without dropping or failing a request: a request takes the current slot and
 * holds it until it finishes; a swap points new requests at the new model and releases the old session only when
 * its last in-flight request is done.
 */
export class ModelRunner {
  #slot: Slot | null = null;
  #released = 0;

  get current(): LoadedModel | null {
    return this.#slot?.model ?? null;
  }

  /** Sessions released after a swap (observability). */
  get released(): number {
    return this.#released;
  }

  /** Makes `model` serve; the previous session drains and is released. */
  swap(model: LoadedModel): void {
    const old = this.#slot;
    this.#slot = { model, inflight: 0, retired: false };
    if (old) {
      old.retired = true;
      if (old.inflight === 0) void this.#release(old);
    }
  }

  async #release(slot: Slot): Promise<void> {
    this.#released++;
    await slot.model.session.release().catch(() => {});
  }

  /** Runs on the current model; the result names the model that answered. */
  async run(input: Float32Array, rows = 1): Promise<{ output: Float32Array; model: LoadedModel }> {
    const slot = this.#slot;
    if (!slot) throw new DeviceError('no-model', 'no model is installed yet');
    slot.inflight++;
    try {
      return { output: await runSession(slot.model, input, rows), model: slot.model };
    } finally {
      slot.inflight--;
      if (slot.retired && slot.inflight === 0) void this.#release(slot);
    }
  }

  async close(): Promise<void> {
    const slot = this.#slot;
    this.#slot = null;
    if (slot && slot.inflight === 0) await this.#release(slot);
    else if (slot) slot.retired = true;
  }
}
