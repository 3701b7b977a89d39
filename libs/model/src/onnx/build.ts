import { ModelSpecError } from '../errors.js';
import { checkWeights, parseModelSpec, type Activation, type Head, type ModelSpec } from '../spec.js';
import { float32ToBytes, type NamedTensor } from '../tensor.js';
import { ATTRIBUTE_FLOAT, ATTRIBUTE_INT, ModelProto, ONNX_FLOAT } from './proto.js';

/** IR version 8 and default-domain opset 17: loaded by every onnxruntime since 1.14. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;
export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'output';

export interface OnnxBuildOptions {
  /** ModelProto.model_version (e.g. the release version). */
  modelVersion?: number;
  /** ModelProto.doc_string. */
  docString?: string;
  /** ModelProto.metadata_props (model id, label, …); the spec is always added as `edgefl.spec`. */
  metadata?: Record<string, string>;
}

const OPERATOR: Record<Activation | Head, string> = {
  relu: 'Relu',
  tanh: 'Tanh',
  sigmoid: 'Sigmoid',
  identity: 'Identity',
  softmax: 'Softmax',
};

function valueInfo(name: string, features: number) {
  return {
    name,
    type: {
      tensorType: {
        elemType: ONNX_FLOAT,
        shape: { dim: [{ dimParam: 'batch' }, { dimValue: features }] },
      },
    },
  };
}

/**
 * Builds an ONNX model (input `input` [batch, inputs] float → output `output` [batch, outputs] float) computing the
 * same function as {@link forward}: per layer Gemm(x, W[in,out], b) then the activation, and the head last.
 * Weights are stored as raw little-endian initializers, so the delta codec can find them by offset.
 */
export function buildOnnx(
  spec: ModelSpec,
  weights: readonly NamedTensor[],
  options: OnnxBuildOptions = {},
): Uint8Array {
  const checked = parseModelSpec(spec);
  const ordered = checkWeights(checked, weights);
  const nodes: object[] = [];
  let x = ONNX_INPUT_NAME;
  const layers = checked.hidden.length + 1;
  for (let l = 0; l < layers; l++) {
    const last = l === layers - 1;
    const gemmOut = `dense${l}.gemm`;
    nodes.push({
      name: `dense${l}`,
      opType: 'Gemm',
      input: [x, `dense${l}.weight`, `dense${l}.bias`],
      output: [gemmOut],
      attribute: [
        { name: 'alpha', type: ATTRIBUTE_FLOAT, f: 1 },
        { name: 'beta', type: ATTRIBUTE_FLOAT, f: 1 },
        { name: 'transB', type: ATTRIBUTE_INT, i: 0 },
      ],
    });
    const activation: Activation | Head = last ? checked.head : checked.hidden[l]!.activation;
    const out = last ? ONNX_OUTPUT_NAME : `dense${l}.out`;
    const attribute = activation === 'softmax' ? [{ name: 'axis', type: ATTRIBUTE_INT, i: -1 }] : [];
    nodes.push({
      name: `dense${l}.${activation}`,
      opType: OPERATOR[activation],
      input: [gemmOut],
      output: [out],
      attribute,
    });
    x = out;
  }
  const metadata = { ...(options.metadata ?? {}), 'edgefl.spec': JSON.stringify(checked) };
  const message = ModelProto.fromObject({
    irVersion: ONNX_IR_VERSION,
    producerName: 'edgefl',
    producerVersion: '1',
    modelVersion: options.modelVersion ?? 0,
    docString: options.docString ?? '',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    metadataProps: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    graph: {
      name: `edgefl_${checked.family.replace('-', '_')}`,
      node: nodes,
      initializer: ordered.map((t) => ({
        name: t.name,
        dims: t.dims,
        dataType: ONNX_FLOAT,
        rawData: float32ToBytes(t.data),
      })),
      input: [valueInfo(ONNX_INPUT_NAME, checked.inputs)],
      output: [valueInfo(ONNX_OUTPUT_NAME, checked.outputs)],
    },
  });
  const err = ModelProto.verify(message);
  if (err) throw new ModelSpecError(`ONNX model: ${err}`);
  return ModelProto.encode(message).finish();
}
