// @edgefl/model — tensors, model spec, ONNX builder, artifact + manifest + signature, delta codec, chunk Merkle tree.
// Pure: imports no lib of ours (signing is passed in as a function; verification uses node:crypto only).
export * from './errors.js';
export * from './tensor.js';
export { SeededRng } from './rng.js';
export * from './spec.js';
export * from './layout.js';
export * from './artifact.js';
export { compress, decompress, DEFAULT_COMPRESSION, ZSTD_AVAILABLE, type Compression } from './compress.js';
export * from './delta/index.js';
export * from './merkle.js';
export * from './manifest.js';
export {
  buildOnnx,
  ONNX_INPUT_NAME,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  ONNX_OUTPUT_NAME,
  type OnnxBuildOptions,
} from './onnx/build.js';
export {
  onnxFloatDataToRawData,
  onnxLayout,
  readOnnxSpec,
  readOnnxTensors,
  summariseOnnxGraph,
  type OnnxGraphSummary,
} from './onnx/read.js';
