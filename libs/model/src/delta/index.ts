// The tensor-aware delta codec of @edgefl/model: format.ts (wire format, header, tensor files), encodings.ts (byte
// planes, bit differences, entropy estimates, split and Rice coding), encode.ts (createDelta: the per-tensor choice),
// decode.ts (applyDelta).

/**
 * The tensor-aware delta codec.
 *
 * A file (edgefl artifact, ONNX model, raw .f32) is seen as float32 tensors plus the bytes around them (the
 * "skeleton"). Per target tensor, matched to the source tensor of the same name and size:
 *   - same:   bit-identical, nothing stored;
 *   - sparse: positions of the changed values (Rice-coded gaps) + the difference of their float bits, regrouped
 *             into a plane of significant-bit counts and a plane of the bits below each leading one;
 *   - dense:  the difference of every value's float bits, byte-plane regrouped (byte 0 of every word, then
 *             byte 1, …: the sign/exponent planes of a small update are nearly all zero and compress to nothing).
 *   The difference of float bits is their XOR, or their integer difference mod 2³² (zigzag) when that is cheaper
 *   (per tensor, by an order-0 entropy estimate): for a small relative change the XOR smears carries into a
 *   higher bit, the integer difference does not, which saves about a bit per value on dense updates.
 *   - quant:  (bounded-error mode) the update quantised uniformly, q = round((new − old) / step), zigzag bytes
 *             regrouped by plane; the step is the largest for which the tensor's relative L2 update error ≤ E;
 *   - raw:    no matching source tensor: the values, byte-plane regrouped.
 * The skeleton is stored only when it changed. The whole body is framed with zstd (brotli where zstd is absent).
 *
 * Lossless deltas rebuild the target bit for bit, checked against the target's sha256. A bounded-error delta
 * rebuilds a deterministic reconstruction (float32 of old + q·step) whose sha256 is the target the caller signs.
 * When a delta is not smaller than the full target the codec says so and emits a "full" delta carrying the
 * target itself, so the caller can serve the full download instead.
 *
 * Wire format: see format.ts.
 */
export {
  DELTA_MAGIC,
  DELTA_VERSION,
  MAX_TARGET_BYTES,
  detectFormat,
  layoutOf,
  readDeltaHeader,
  type DeltaHeader,
  type DeltaMode,
  type TensorEncoding,
} from './format.js';
export { createDelta, type DeltaOptions, type DeltaResult, type DeltaStats } from './encode.js';
export { applyDelta } from './decode.js';
