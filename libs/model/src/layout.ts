import { ModelFormatError } from './errors.js';

/** File formats whose float32 tensors the delta codec can find. */
export const TENSOR_FILE_FORMATS = ['artifact', 'onnx', 'f32'] as const;
export type TensorFileFormat = (typeof TENSOR_FILE_FORMATS)[number];

/** Where one float32 tensor (little-endian, `count` values) sits in a file. */
export interface TensorSpan {
  name: string;
  dims: number[];
  /** Byte offset in the file. */
  offset: number;
  count: number;
}

/** A file seen as its tensors (sorted by offset, non-overlapping) plus the bytes around them. */
export interface TensorLayout {
  format: TensorFileFormat;
  size: number;
  tensors: TensorSpan[];
}

/** A raw little-endian float32 file (`*.f32`) is one tensor named `data`. */
export function f32Layout(bytes: Uint8Array): TensorLayout {
  if (bytes.byteLength % 4 !== 0) {
    throw new ModelFormatError(
      'truncated',
      `a .f32 file holds whole float32 values; ${bytes.byteLength} is not a multiple of 4`,
    );
  }
  const count = bytes.byteLength / 4;
  return {
    format: 'f32',
    size: bytes.byteLength,
    tensors: [{ name: 'data', dims: [count], offset: 0, count }],
  };
}

/** Checks that spans are sorted, inside the file and do not overlap. */
export function assertLayout(layout: TensorLayout): void {
  let end = 0;
  for (const t of layout.tensors) {
    if (!Number.isSafeInteger(t.offset) || !Number.isSafeInteger(t.count) || t.offset < end || t.count < 0) {
      throw new ModelFormatError('bad-tensor', `tensor ${t.name} overlaps another or is out of order`);
    }
    end = t.offset + t.count * 4;
    if (end > layout.size)
      throw new ModelFormatError('truncated', `tensor ${t.name} runs past the end of the file`);
  }
}

/** The bytes of a file outside its tensors, in order. */
export function skeletonOf(bytes: Uint8Array, layout: TensorLayout): Uint8Array {
  const tensorBytes = layout.tensors.reduce((n, t) => n + t.count * 4, 0);
  const out = new Uint8Array(layout.size - tensorBytes);
  let at = 0;
  let pos = 0;
  for (const t of layout.tensors) {
    out.set(bytes.subarray(pos, t.offset), at);
    at += t.offset - pos;
    pos = t.offset + t.count * 4;
  }
  out.set(bytes.subarray(pos, layout.size), at);
  return out;
}

/** Writes `skeleton` around the tensor spans of a `layout.size`-byte buffer (the tensors are filled in later). */
export function placeSkeleton(skeleton: Uint8Array, layout: TensorLayout): Uint8Array {
  const out = new Uint8Array(layout.size);
  let at = 0;
  let pos = 0;
  for (const t of layout.tensors) {
    out.set(skeleton.subarray(at, at + (t.offset - pos)), pos);
    at += t.offset - pos;
    pos = t.offset + t.count * 4;
  }
  out.set(skeleton.subarray(at, at + (layout.size - pos)), pos);
  return out;
}
