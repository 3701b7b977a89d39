import type { ReleaseManifest } from '@edgefl/model';
import { SeededRng } from '@edgefl/model';
import { OtaError } from '../errors.js';
import { loadModel, runSession, type LoadedModel, type SessionOptions } from '../inference/model-runner.js';

/** Rows of seeded N(0, 1) probes run when a manifest carries no canary inputs. */
const PROBE_ROWS = 8;

export interface ValidationReport {
  rows: number;
  /** Largest |output − expected| over the canary rows (null without canary). */
  maxAbsError: number | null;
}

/**
 * Validation inference before install: loads the verified bytes in ONNX Runtime and runs the manifest's canary
 * inputs (or, without them, seeded probes derived from the artifact hash). Refuses ('validation-failed') a model that
 * does not load, whose outputs are not finite or not of the spec's shape, whose head gives values outside its range
 * (sigmoid in [0, 1], softmax rows summing to 1), or whose outputs differ from the canary's by more than its
 * tolerance. Returns the loaded model, ready to swap in.
 */
export async function validateModel(
  manifest: ReleaseManifest,
  bytes: Uint8Array,
  sessionOptions: SessionOptions = {},
): Promise<{ model: LoadedModel; report: ValidationReport }> {
  let model: LoadedModel;
  try {
    model = await loadModel(
      { modelId: manifest.modelId, version: manifest.version, sha256: manifest.artifact.sha256 },
      bytes,
      sessionOptions,
    );
  } catch (error) {
    throw new OtaError('validation-failed', `the model does not load: ${(error as Error).message}`);
  }
  try {
    const spec = model.spec;
    const canary = manifest.canary;
    let input: Float32Array;
    let rows: number;
    if (canary) {
      rows = canary.inputs.length;
      if (
        canary.inputs.some((r) => r.length !== spec.inputs) ||
        canary.outputs.some((r) => r.length !== spec.outputs)
      )
        throw new OtaError(
          'validation-failed',
          `canary rows do not match the model's ${spec.inputs} → ${spec.outputs} shape`,
        );
      input = Float32Array.from(canary.inputs.flat());
    } else {
      rows = PROBE_ROWS;
      const rng = new SeededRng(Number.parseInt(manifest.artifact.sha256.slice(0, 8), 16));
      input = new Float32Array(rows * spec.inputs).map(() => rng.normal());
    }
    let output: Float32Array;
    try {
      output = await runSession(model, input, rows);
    } catch (error) {
      throw new OtaError('validation-failed', `inference failed: ${(error as Error).message}`);
    }
    if (output.length !== rows * spec.outputs)
      throw new OtaError(
        'validation-failed',
        `output has ${output.length} values, expected ${rows} × ${spec.outputs}`,
      );
    for (let i = 0; i < output.length; i++) {
      const v = output[i]!;
      if (!Number.isFinite(v)) throw new OtaError('validation-failed', `output ${i} is not finite`);
      if (v < -1e-6 || v > 1 + 1e-6)
        throw new OtaError('validation-failed', `output ${i} (${v}) is outside [0, 1]`);
    }
    if (spec.head === 'softmax') {
      for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let c = 0; c < spec.outputs; c++) sum += output[r * spec.outputs + c]!;
        if (Math.abs(sum - 1) > 1e-3)
          throw new OtaError('validation-failed', `softmax row ${r} sums to ${sum}`);
      }
    }
    let maxAbsError: number | null = null;
    if (canary) {
      maxAbsError = 0;
      const expected = canary.outputs.flat();
      for (let i = 0; i < expected.length; i++)
        maxAbsError = Math.max(maxAbsError, Math.abs(output[i]! - expected[i]!));
      if (maxAbsError > canary.tolerance)
        throw new OtaError(
          'validation-failed',
          `outputs differ from the canary's by ${maxAbsError.toExponential(2)} (tolerance ${canary.tolerance})`,
        );
    }
    return { model, report: { rows, maxAbsError } };
  } catch (error) {
    await model.session.release().catch(() => {});
    throw error;
  }
}
