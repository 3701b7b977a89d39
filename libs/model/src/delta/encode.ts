// Building a delta: per target tensor, the encoding chosen (same / sparse / dense / raw, or quant in bounded-error
// mode), its section, the header, and the fall-back to a full copy when the delta would not be smaller.
import { DEFAULT_COMPRESSION, type Compression } from '../compress.js';
import { DeltaError } from '../errors.js';
import { sha256Hex } from '../hash.js';
import { skeletonOf, type TensorFileFormat, type TensorSpan } from '../layout.js';
import { uint32FromBytes, writeUint32 } from '../tensor.js';
import {
  diffWords,
  planeCost,
  riceEncodeGaps,
  splitCost,
  splitEncode,
  toPlanes,
  type Transform,
} from './encodings.js';
import {
  detectFormat,
  frame,
  layoutOf,
  MAX_TARGET_BYTES,
  type DeltaHeader,
  type DeltaMode,
  type TensorEntry,
} from './format.js';

/** A tensor with at most this fraction of changed values is encoded sparse. */
export const SPARSE_FRACTION = 0.25;

export interface DeltaOptions {
  /** How to find tensors: 'auto' (default) = artifact magic → artifact, otherwise ONNX. `.f32` files need 'f32'. */
  format?: TensorFileFormat | 'auto';
  /** Bounded-error mode: the relative L2 error of the update (‖recon − new‖ / ‖new − old‖) stays ≤ this. */
  maxRelError?: number;
  compression?: Compression;
  /** zstd level (1–22; brotli quality 0–11). Default 19 for bodies up to 1 MiB, 6 above (byte planes of float updates gain nothing from slower levels). */
  level?: number;
}

export interface DeltaStats {
  same: number;
  sparse: number;
  dense: number;
  quant: number;
  raw: number;
  /** Changed values over all matched tensors. */
  changedValues: number;
  totalValues: number;
}

export interface DeltaResult {
  /** The delta to ship (a "full" delta carrying the target when that is not larger). */
  delta: Uint8Array;
  /** The exact bytes a device rebuilds: the target (lossless) or the bounded-error reconstruction. Sign these. */
  target: Uint8Array;
  targetSha256: string;
  mode: DeltaMode;
  /** True when the tensor delta was not smaller than the full target and `delta` carries the target instead. */
  fellBackToFull: boolean;
  /** Achieved relative L2 error of the update (0 when lossless). */
  relError: number;
  stats: DeltaStats;
}

interface Encoded {
  entry: TensorEntry;
  section: Uint8Array;
  /** The words the target holds after applying this section (differs from the target only in quant mode). */
  recon?: Uint32Array;
  changed: number;
}

/** The lossless encodings, and what decides between them. */
export type LosslessEncoding = 'same' | 'sparse' | 'dense' | 'raw';

/**
 * Chooses the lossless encoding of a target tensor from its source counterpart (undefined when there is none):
 * raw without a source, same when bit-identical, sparse when at most SPARSE_FRACTION of the values changed (their
 * positions then cost less than a full plane), dense otherwise. `changed` counts the values whose bits differ.
 */
export function chooseLosslessEncoding(
  a: Uint32Array | undefined,
  b: Uint32Array,
): { enc: LosslessEncoding; changed: number } {
  if (!a) return { enc: 'raw', changed: b.length };
  let changed = 0;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) changed++;
  if (changed === 0) return { enc: 'same', changed };
  return { enc: changed <= b.length * SPARSE_FRACTION ? 'sparse' : 'dense', changed };
}

function encodeLossless(span: TensorSpan, a: Uint32Array | undefined, b: Uint32Array): Encoded {
  const base = { name: span.name, dims: span.dims, offset: span.offset };
  const { enc, changed } = chooseLosslessEncoding(a, b);
  if (enc === 'raw' || !a) {
    const section = new Uint8Array(b.length * 4);
    toPlanes(b, section, 0);
    return { entry: { ...base, enc: 'raw', length: section.byteLength }, section, changed };
  }
  if (enc === 'same') return { entry: { ...base, enc, length: 0 }, section: new Uint8Array(0), changed };
  if (enc === 'sparse') {
    const { section, transform } = sparseSection(a, b, changed);
    return { entry: { ...base, enc, length: section.byteLength, nnz: changed, transform }, section, changed };
  }
  const { section, transform } = denseSection(a, b);
  return { entry: { ...base, enc, length: section.byteLength, transform }, section, changed };
}

/** Rice-coded positions of the `nnz` changed values, then their bit differences, split coded. */
function sparseSection(
  a: Uint32Array,
  b: Uint32Array,
  nnz: number,
): { section: Uint8Array; transform: Transform } {
  const index = new Uint32Array(nnz);
  let k = 0;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) index[k++] = i;
  const gaps = riceEncodeGaps(index);
  const xor = diffWords(a, b, 'xor', index);
  const sub = diffWords(a, b, 'sub', index);
  const transform: Transform = splitCost(sub) < splitCost(xor) ? 'sub' : 'xor';
  const values = splitEncode(transform === 'sub' ? sub : xor);
  const section = new Uint8Array(gaps.byteLength + values.byteLength);
  section.set(gaps, 0);
  section.set(values, gaps.byteLength);
  return { section, transform };
}

/** Every value's bit difference, in byte planes. */
function denseSection(a: Uint32Array, b: Uint32Array): { section: Uint8Array; transform: Transform } {
  const xor = diffWords(a, b, 'xor');
  const sub = diffWords(a, b, 'sub');
  const transform: Transform = planeCost(sub) < planeCost(xor) ? 'sub' : 'xor';
  const section = new Uint8Array(b.length * 4);
  toPlanes(transform === 'sub' ? sub : xor, section, 0);
  return { section, transform };
}

/**
 * Uniform quantisation of the update with the largest step whose reconstruction keeps this tensor's relative
 * L2 update error ≤ maxRelError (per tensor, so the whole update's relative error is ≤ maxRelError as well).
 * Returns null when no step does (non-finite values, or an error bound below float32 resolution).
 */
function encodeQuantized(
  span: TensorSpan,
  a: Uint32Array,
  b: Uint32Array,
  maxRelError: number,
): (Encoded & { err2: number; norm2: number }) | null {
  const n = b.length;
  const av = new Float32Array(a.buffer, a.byteOffset, n);
  const bv = new Float32Array(b.buffer, b.byteOffset, n);
  const u = new Float64Array(n);
  let norm2 = 0;
  let nnz = 0;
  for (let i = 0; i < n; i++) {
    const d = bv[i]! - av[i]!;
    if (!Number.isFinite(d)) return null;
    u[i] = d;
    norm2 += d * d;
    if (a[i] !== b[i]) nnz++;
  }
  if (norm2 === 0) return null;
  const bound2 = maxRelError * maxRelError * norm2;
  // high-resolution estimate: uniform quantisation error has variance step²/12
  let step = 0.98 * maxRelError * Math.sqrt((12 * norm2) / n);
  const q = new Int32Array(n);
  const recon = new Float32Array(n);
  for (let attempt = 0; attempt < 12; attempt++, step *= 0.8) {
    let err2 = 0;
    let maxAbs = 0;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const qi = Math.round(u[i]! / step);
      if (Math.abs(qi) > 0x3fffffff) {
        ok = false;
        break;
      }
      q[i] = qi;
      if (Math.abs(qi) > maxAbs) maxAbs = Math.abs(qi);
      const r = Math.fround(av[i]! + qi * step);
      recon[i] = r;
      const e = r - bv[i]!;
      err2 += e * e;
    }
    if (!ok || err2 > bound2) continue;
    const width: 1 | 2 | 4 = maxAbs < 0x80 ? 1 : maxAbs < 0x8000 ? 2 : 4;
    const zz = new Uint32Array(n);
    for (let i = 0; i < n; i++) zz[i] = ((q[i]! << 1) ^ (q[i]! >> 31)) >>> 0;
    const section = new Uint8Array(n * width);
    toPlanes(zz, section, 0, width);
    return {
      entry: {
        name: span.name,
        dims: span.dims,
        offset: span.offset,
        enc: 'quant',
        length: section.byteLength,
        step,
        width,
      },
      section,
      recon: new Uint32Array(recon.buffer, recon.byteOffset, n),
      changed: nnz,
      err2,
      norm2,
    };
  }
  return null;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  return x.byteLength === y.byteLength && Buffer.compare(x, y) === 0;
}

/**
 * Builds a delta from `source` to `target`. Malformed inputs → ModelFormatError; a bad option → DeltaError.
 * See {@link DeltaResult} for what to sign and when to ship the full target instead.
 */
export function createDelta(source: Uint8Array, target: Uint8Array, options: DeltaOptions = {}): DeltaResult {
  const { maxRelError } = options;
  if (maxRelError !== undefined && !(Number.isFinite(maxRelError) && maxRelError > 0 && maxRelError < 1)) {
    throw new DeltaError('bad-option', 'maxRelError must be a number in (0, 1)');
  }
  if (target.byteLength > MAX_TARGET_BYTES) throw new DeltaError('bad-option', 'target is larger than 2 GiB');
  const format =
    options.format === undefined || options.format === 'auto' ? detectFormat(target) : options.format;
  const srcLayout = layoutOf(source, format);
  const tgtLayout = layoutOf(target, format);
  const compression = options.compression ?? DEFAULT_COMPRESSION;
  const sourceSha = sha256Hex(source);

  const srcByName = new Map(srcLayout.tensors.map((t) => [t.name, t]));
  const sections: Uint8Array[] = [];
  const entries: TensorEntry[] = [];
  const stats: DeltaStats = {
    same: 0,
    sparse: 0,
    dense: 0,
    quant: 0,
    raw: 0,
    changedValues: 0,
    totalValues: 0,
  };
  let recon: Uint8Array | undefined;
  let err2 = 0;
  let norm2 = 0;
  const srcSkeleton = skeletonOf(source, srcLayout);
  const tgtSkeleton = skeletonOf(target, tgtLayout);
  const skeletonSame = sameBytes(srcSkeleton, tgtSkeleton);
  if (!skeletonSame) sections.push(tgtSkeleton);

  for (const span of tgtLayout.tensors) {
    const b = uint32FromBytes(target, span.offset, span.count);
    const match = srcByName.get(span.name);
    const a =
      match && match.count === span.count ? uint32FromBytes(source, match.offset, match.count) : undefined;
    let encoded: Encoded | null = null;
    if (maxRelError !== undefined && a) {
      const quant = encodeQuantized(span, a, b, maxRelError);
      if (quant) {
        err2 += quant.err2;
        norm2 += quant.norm2;
        encoded = quant;
      }
    }
    if (!encoded) {
      encoded = encodeLossless(span, a, b);
      if (a && maxRelError !== undefined) {
        // kept exact: its update still counts in the denominator of the relative error
        const av = new Float32Array(a.buffer, a.byteOffset, a.length);
        const bv = new Float32Array(b.buffer, b.byteOffset, b.length);
        for (let i = 0; i < b.length; i++) {
          const d = bv[i]! - av[i]!;
          if (Number.isFinite(d)) norm2 += d * d;
        }
      }
    }
    if (encoded.recon) {
      recon ??= new Uint8Array(target); // a copy (Buffer.slice would alias the caller's bytes)
      writeUint32(recon, span.offset, encoded.recon);
    }
    stats[encoded.entry.enc]++;
    if (a) stats.changedValues += encoded.changed;
    stats.totalValues += span.count;
    entries.push(encoded.entry);
    sections.push(encoded.section);
  }

  const rebuilt = recon ?? target;
  const targetSha256 = recon ? sha256Hex(recon) : sha256Hex(target);
  const relError = norm2 > 0 ? Math.sqrt(err2 / norm2) : 0;
  const mode: DeltaMode = recon ? 'bounded' : 'lossless';
  const bodyLength = sections.reduce((n, s) => n + s.byteLength, 0);
  const header: DeltaHeader = {
    format,
    mode,
    compression,
    source: { size: source.byteLength, sha256: sourceSha },
    target: { size: rebuilt.byteLength, sha256: targetSha256 },
    maxRelError: maxRelError ?? null,
    relError,
    skeleton: { same: skeletonSame, length: skeletonSame ? 0 : tgtSkeleton.byteLength },
    tensors: entries,
  };
  const delta = frame(header, concat(sections, bodyLength), options.level);
  if (delta.byteLength < target.byteLength) {
    return { delta, target: rebuilt, targetSha256, mode, fellBackToFull: false, relError, stats };
  }
  // not smaller than the full download: carry the exact target instead
  const fullSha = sha256Hex(target);
  const full = frame(
    {
      format,
      mode: 'full',
      compression,
      source: { size: source.byteLength, sha256: sourceSha },
      target: { size: target.byteLength, sha256: fullSha },
      maxRelError: null,
      relError: 0,
      skeleton: { same: false, length: target.byteLength },
      tensors: [],
    },
    target,
    options.level ?? 3,
  );
  return {
    delta: full,
    target,
    targetSha256: fullSha,
    mode: 'full',
    fellBackToFull: true,
    relError: 0,
    stats,
  };
}
