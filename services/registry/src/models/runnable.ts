import { UnprocessableError } from '@edgefl/service-kit';
import { summariseOnnxGraph, type ModelSpec } from '@edgefl/model';
import * as ort from 'onnxruntime-node';

/** TensorProto.DataType FLOAT. */
const ONNX_FLOAT = 1;
/** Inputs whose declared shape would need more elements than this are fed a one-element batch only. */
const MAX_PROBE_ELEMENTS = 1 << 24;

/**
 * Refuses (422, with the reason) an ONNX model no device could run, before anything is stored or signed: it must
 * import an opset of the default domain, have nodes, inputs and outputs, load in onnxruntime (which refuses
 * unknown operators and ill-typed graphs) and run once on zeros of its input shape — the spec's `[1, inputs]`
 * when the model has a spec (its input must fit it), else the declared shape with symbolic dimensions as 1.
 */
export async function assertRunnable(onnx: Uint8Array, spec: ModelSpec | null): Promise<void> {
  const graph = summariseOnnxGraph(onnx);
  if (!graph.opsets.some((o) => (o.domain === '' || o.domain === 'ai.onnx') && o.version > 0))
    throw new UnprocessableError(
      'not a runnable ONNX model: it imports no opset of the default (ai.onnx) domain',
    );
  if (graph.nodeCount === 0)
    throw new UnprocessableError('not a runnable ONNX model: its graph has no nodes');
  if (graph.inputs.length === 0)
    throw new UnprocessableError('not a runnable ONNX model: its graph has no inputs');
  if (graph.outputs.length === 0)
    throw new UnprocessableError('not a runnable ONNX model: its graph has no outputs');
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of graph.inputs) {
    if (input.elemType !== ONNX_FLOAT)
      throw new UnprocessableError(
        `not a runnable ONNX model: input ${input.name} has element type ${input.elemType}; float32 inputs are required`,
      );
    let dims = input.dims.map((d) => (d < 0 ? 1 : d));
    if (spec !== null) {
      const fits =
        dims.length === 2 && (input.dims[1] === -1 || input.dims[1] === spec.inputs) && input.dims[0] !== 0;
      if (!fits)
        throw new UnprocessableError(
          `input ${input.name} has shape [${input.dims.join(', ')}]; the model's spec needs [batch, ${spec.inputs}]`,
        );
      dims = [1, spec.inputs];
    }
    const count = dims.reduce((n, d) => n * d, 1);
    if (count > MAX_PROBE_ELEMENTS)
      throw new UnprocessableError(
        `input ${input.name} of shape [${dims.join(', ')}] is too large to run once`,
      );
    feeds[input.name] = new ort.Tensor('float32', new Float32Array(count), dims);
  }
  let session: ort.InferenceSession | undefined;
  try {
    session = await ort.InferenceSession.create(onnx, { graphOptimizationLevel: 'basic' });
    await session.run(feeds);
  } catch (error) {
    // onnxruntime's messages name the failing operator or check and never carry secrets
    const message = (error as Error).message.split('\n')[0]!.slice(0, 500);
    throw new UnprocessableError(`onnxruntime cannot run this model: ${message}`);
  } finally {
    await session?.release().catch(() => undefined);
  }
}
