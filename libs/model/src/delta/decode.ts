// Applying a delta: header checks, the body decompressed to the length the header names, each tensor rebuilt from
// the source by its encoding, and the result's sha256 checked before any byte is returned.
import { decompress } from '../compress.js';
import { DeltaError, ModelFormatError } from '../errors.js';
import { sha256Hex } from '../hash.js';
import {
  assertLayout,
  placeSkeleton,
  skeletonOf,
  type TensorFileFormat,
  type TensorLayout,
  type TensorSpan,
} from '../layout.js';
import { elementCount, uint32FromBytes, writeUint32 } from '../tensor.js';
import { fromPlanes, riceDecodePositions, splitDecode, undiffWord } from './encodings.js';
import { corrupt, layoutOf, MAX_TARGET_BYTES, readDeltaHeader } from './format.js';

/**
 * Rebuilds the target from `source` and `delta`. Throws DeltaError: 'source-mismatch' when the delta was built
 * from another file (also a full-copy delta: a delta names the one file it applies to), 'corrupt'/'truncated'/'bad-header' for a damaged delta, 'target-mismatch' when the result's
 * sha256 is not the one the delta names. Never returns bytes that failed the check.
 */
export function applyDelta(source: Uint8Array, delta: Uint8Array): Uint8Array {
  const header = readDeltaHeader(delta);
  const packed = delta.subarray(header.bodyOffset);
  if (source.byteLength !== header.source.size || sha256Hex(source) !== header.source.sha256) {
    throw new DeltaError('source-mismatch', 'the delta was built from another file (source sha256 differs)');
  }
  const tgtLayout: TensorLayout = {
    format: header.format,
    size: header.target.size,
    tensors: header.tensors.map((t) => ({
      name: t.name,
      dims: t.dims,
      offset: t.offset,
      count: elementCount(t.dims),
    })),
  };
  try {
    assertLayout(tgtLayout);
  } catch (error) {
    throw corrupt(`delta target layout: ${(error as Error).message}`);
  }
  const tensorBytes = tgtLayout.tensors.reduce((n, t) => n + t.count * 4, 0);
  const skeletonLength = header.target.size - tensorBytes;
  if (!header.skeleton.same && header.skeleton.length !== skeletonLength)
    throw corrupt('delta skeleton length is inconsistent');
  const bodyLength = header.skeleton.length + header.tensors.reduce((n, t) => n + t.length, 0);
  if (bodyLength > MAX_TARGET_BYTES * 2) throw corrupt('delta body is too large');
  let body: Uint8Array;
  try {
    body = decompress(packed, header.compression, bodyLength);
  } catch (error) {
    throw new DeltaError('corrupt', `delta body does not decompress: ${(error as Error).message}`);
  }
  if (body.byteLength !== bodyLength)
    throw corrupt(`delta body is ${body.byteLength} bytes, header says ${bodyLength}`);

  let srcLayout: TensorLayout | undefined;
  let skeleton: Uint8Array;
  let at = 0;
  if (header.skeleton.same) {
    srcLayout = layoutOfSource(source, header.format);
    skeleton = skeletonOf(source, srcLayout);
    if (skeleton.byteLength !== skeletonLength) throw corrupt('delta skeleton does not fit the source');
  } else {
    skeleton = body.subarray(0, header.skeleton.length);
    at = header.skeleton.length;
  }
  const out = placeSkeleton(skeleton, tgtLayout);
  const srcByName = new Map<string, TensorSpan>();
  if (header.tensors.some((t) => t.enc !== 'raw')) {
    srcLayout ??= layoutOfSource(source, header.format);
    for (const t of srcLayout.tensors) srcByName.set(t.name, t);
  }
  header.tensors.forEach((entry, index) => {
    const span = tgtLayout.tensors[index]!;
    const n = span.count;
    const section = body.subarray(at, at + entry.length);
    at += entry.length;
    if (entry.enc === 'raw') {
      if (entry.length !== n * 4) throw corrupt(`tensor ${entry.name}: raw section length`);
      writeUint32(out, span.offset, fromPlanes(section, 0, n));
      return;
    }
    const match = srcByName.get(entry.name);
    if (!match || match.count !== n)
      throw new DeltaError('source-mismatch', `source has no tensor ${entry.name} of ${n} values`);
    const a = uint32FromBytes(source, match.offset, n);
    switch (entry.enc) {
      case 'same':
        if (entry.length !== 0) throw corrupt(`tensor ${entry.name}: 'same' carries data`);
        writeUint32(out, span.offset, a);
        return;
      case 'dense': {
        if (entry.length !== n * 4) throw corrupt(`tensor ${entry.name}: dense section length`);
        const t = entry.transform ?? 'xor';
        const x = fromPlanes(section, 0, n);
        for (let i = 0; i < n; i++) x[i] = undiffWord(a[i]!, x[i]!, t);
        writeUint32(out, span.offset, x);
        return;
      }
      case 'sparse': {
        const nnz = entry.nnz;
        if (nnz === undefined || nnz > n) throw corrupt(`tensor ${entry.name}: sparse count`);
        const { positions, bytes: p } = riceDecodePositions(section, nnz, n, entry.name);
        const t = entry.transform ?? 'xor';
        const diffs = splitDecode(section.subarray(p), nnz, entry.name);
        const words = a.slice();
        for (let k = 0; k < nnz; k++) words[positions[k]!] = undiffWord(a[positions[k]!]!, diffs[k]!, t);
        writeUint32(out, span.offset, words);
        return;
      }
      case 'quant': {
        const { step, width } = entry;
        if (step === undefined || width === undefined || entry.length !== n * width) {
          throw corrupt(`tensor ${entry.name}: quantised section`);
        }
        const zz = fromPlanes(section, 0, n, width);
        const av = new Float32Array(a.buffer, a.byteOffset, n);
        const recon = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const z = zz[i]!;
          const qi = (z >>> 1) ^ -(z & 1);
          recon[i] = Math.fround(av[i]! + qi * step);
        }
        writeUint32(out, span.offset, new Uint32Array(recon.buffer));
        return;
      }
    }
  });
  if (at !== body.byteLength) throw corrupt('delta body has unread bytes');
  if (sha256Hex(out) !== header.target.sha256) {
    throw new DeltaError(
      'target-mismatch',
      'the rebuilt file does not match the target sha256 the delta names',
    );
  }
  return out;
}

function layoutOfSource(source: Uint8Array, format: TensorFileFormat): TensorLayout {
  try {
    return layoutOf(source, format);
  } catch (error) {
    if (error instanceof ModelFormatError)
      throw new DeltaError('format-mismatch', `source is not a ${format} file: ${error.message}`);
    throw error;
  }
}
