import { endianness } from 'node:os';
import { ModelSpecError } from './errors.js';

/** A named float32 tensor, row-major (the last dimension varies fastest), as ONNX stores initializers. */
export interface NamedTensor {
  name: string;
  dims: number[];
  data: Float32Array;
}

const LITTLE_ENDIAN = endianness() === 'LE';

/** Number of elements a shape holds (1 for a scalar). */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** Checks a tensor's name, shape and data; throws ModelSpecError. */
export function assertTensor(tensor: NamedTensor): void {
  if (typeof tensor.name !== 'string' || tensor.name.length === 0 || tensor.name.length > 256) {
    throw new ModelSpecError('a tensor name is a non-empty string of at most 256 characters');
  }
  if (!Array.isArray(tensor.dims) || tensor.dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new ModelSpecError(`tensor ${tensor.name}: dims must be non-negative integers`);
  }
  if (!(tensor.data instanceof Float32Array)) {
    throw new ModelSpecError(`tensor ${tensor.name}: data must be a Float32Array`);
  }
  if (elementCount(tensor.dims) !== tensor.data.length) {
    throw new ModelSpecError(
      `tensor ${tensor.name}: dims [${tensor.dims.join(',')}] hold ${elementCount(tensor.dims)} values, data has ${tensor.data.length}`,
    );
  }
}

/** Little-endian bytes of a float32 array (a copy). */
export function float32ToBytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN)
    return new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i]!, true);
  return out;
}

/** Reads `count` little-endian float32 values at `offset` of `bytes` into a fresh array. */
export function float32FromBytes(
  bytes: Uint8Array,
  offset = 0,
  count = (bytes.byteLength - offset) >>> 2,
): Float32Array {
  if (offset < 0 || offset + count * 4 > bytes.byteLength)
    throw new RangeError('float32 range outside the buffer');
  if (LITTLE_ENDIAN) {
    const copy = Uint8Array.prototype.slice.call(bytes, offset, offset + count * 4); // a copy, also for a Buffer
    return new Float32Array(copy.buffer, copy.byteOffset, count);
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 4);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Reads `count` little-endian uint32 words at `offset` (the float bits the delta codec works on). */
export function uint32FromBytes(bytes: Uint8Array, offset: number, count: number): Uint32Array {
  if (offset < 0 || offset + count * 4 > bytes.byteLength)
    throw new RangeError('uint32 range outside the buffer');
  if (LITTLE_ENDIAN) {
    const copy = Uint8Array.prototype.slice.call(bytes, offset, offset + count * 4); // a copy, also for a Buffer
    return new Uint32Array(copy.buffer, copy.byteOffset, count);
  }
  const out = new Uint32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * 4);
  for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

/** Writes uint32 words little-endian into `target` at `offset`. */
export function writeUint32(target: Uint8Array, offset: number, words: Uint32Array): void {
  if (LITTLE_ENDIAN) {
    target.set(new Uint8Array(words.buffer, words.byteOffset, words.byteLength), offset);
    return;
  }
  const view = new DataView(target.buffer, target.byteOffset + offset, words.length * 4);
  for (let i = 0; i < words.length; i++) view.setUint32(i * 4, words[i]!, true);
}

/** Tensors by name; throws ModelSpecError on a duplicate name. */
export function tensorMap(tensors: readonly NamedTensor[]): Map<string, NamedTensor> {
  const map = new Map<string, NamedTensor>();
  for (const t of tensors) {
    if (map.has(t.name)) throw new ModelSpecError(`duplicate tensor name ${t.name}`);
    map.set(t.name, t);
  }
  return map;
}
