import { z } from 'zod';
import { artifactLayout, isArtifact } from './artifact.js';
import { compress, decompress, DEFAULT_COMPRESSION, type Compression } from './compress.js';
import { DeltaError, ModelFormatError } from './errors.js';
import { sha256Hex } from './hash.js';
import {
  assertLayout,
  f32Layout,
  placeSkeleton,
  skeletonOf,
  TENSOR_FILE_FORMATS,
  type TensorFileFormat,
  type TensorLayout,
  type TensorSpan,
} from './layout.js';
import { onnxLayout } from './onnx/read.js';
import { BitReader, BitWriter } from './bits.js';
import { elementCount, uint32FromBytes, writeUint32 } from './tensor.js';

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
 * Wire format: "EFLDELTA" | u16 LE version (1) | u16 reserved | u32 LE header length | header JSON | compressed body.
 */
export const DELTA_MAGIC = 'EFLDELTA';
export const DELTA_VERSION = 1;
const PREFIX_BYTES = 16;
const MAX_HEADER_BYTES = 64 << 20;
/** Largest target the codec builds or rebuilds (2 GiB). */
export const MAX_TARGET_BYTES = 2 ** 31 - 1;
/** A tensor with at most this fraction of changed values is encoded sparse. */
const SPARSE_FRACTION = 0.25;

export type DeltaMode = 'lossless' | 'bounded' | 'full';
export type TensorEncoding = 'same' | 'sparse' | 'dense' | 'quant' | 'raw';

const sha = z.string().regex(/^[0-9a-f]{64}$/);
const size = z.number().int().min(0).max(MAX_TARGET_BYTES);
const TensorEntrySchema = z
  .object({
    name: z.string().min(1).max(256),
    dims: z.array(z.number().int().min(0)).max(8),
    offset: size,
    enc: z.enum(['same', 'sparse', 'dense', 'quant', 'raw']),
    /** Bytes of this tensor's section in the body. */
    length: size,
    nnz: size.optional(),
    step: z.number().positive().finite().optional(),
    width: z.union([z.literal(1), z.literal(2), z.literal(4)]).optional(),
    transform: z.enum(['xor', 'sub']).optional(),
  })
  .strict();
const HeaderSchema = z
  .object({
    format: z.enum(TENSOR_FILE_FORMATS),
    mode: z.enum(['lossless', 'bounded', 'full']),
    compression: z.enum(['zstd', 'brotli']),
    source: z.object({ size, sha256: sha }).strict(),
    target: z.object({ size, sha256: sha }).strict(),
    maxRelError: z.number().positive().finite().nullable(),
    relError: z.number().min(0).finite(),
    skeleton: z.object({ same: z.boolean(), length: size }).strict(),
    tensors: z.array(TensorEntrySchema).max(100_000),
  })
  .strict();

export type DeltaHeader = z.infer<typeof HeaderSchema>;
type TensorEntry = z.infer<typeof TensorEntrySchema>;

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

/** The tensor layout of a file in the given format; malformed files → ModelFormatError. */
export function layoutOf(bytes: Uint8Array, format: TensorFileFormat | 'auto' = 'auto'): TensorLayout {
  const resolved = format === 'auto' ? (isArtifact(bytes) ? 'artifact' : 'onnx') : format;
  const layout =
    resolved === 'artifact'
      ? artifactLayout(bytes)
      : resolved === 'onnx'
        ? onnxLayout(bytes)
        : f32Layout(bytes);
  assertLayout(layout);
  return layout;
}

/** Which file format 'auto' picks for these bytes. */
export function detectFormat(bytes: Uint8Array): TensorFileFormat {
  return isArtifact(bytes) ? 'artifact' : 'onnx';
}

// ---------------------------------------------------------------------------------------------- byte planes

function toPlanes(words: Uint32Array, out: Uint8Array, at: number, width: 1 | 2 | 4 = 4): void {
  const n = words.length;
  for (let p = 0; p < width; p++) {
    const shift = 8 * p;
    const base = at + p * n;
    for (let i = 0; i < n; i++) out[base + i] = words[i]! >>> shift;
  }
}

function fromPlanes(bytes: Uint8Array, at: number, n: number, width: 1 | 2 | 4 = 4): Uint32Array {
  const words = new Uint32Array(n);
  for (let p = 0; p < width; p++) {
    const shift = 8 * p;
    const base = at + p * n;
    for (let i = 0; i < n; i++) words[i]! |= bytes[base + i]! << shift;
  }
  return words;
}

// ---------------------------------------------------------------------------------------------- encoding

interface Encoded {
  entry: TensorEntry;
  section: Uint8Array;
  /** The words the target holds after applying this section (differs from the target only in quant mode). */
  recon?: Uint32Array;
  changed: number;
}

type Transform = 'xor' | 'sub';

/** The difference of two float bit patterns: XOR, or the zigzagged integer difference mod 2³². */
function diffWords(a: Uint32Array, b: Uint32Array, t: Transform, index?: Uint32Array): Uint32Array {
  const n = index ? index.length : b.length;
  const out = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    const i = index ? index[k]! : k;
    if (t === 'xor') out[k] = (a[i]! ^ b[i]!) >>> 0;
    else {
      const d = (b[i]! - a[i]!) | 0;
      out[k] = ((d << 1) ^ (d >> 31)) >>> 0;
    }
  }
  return out;
}

function undiffWord(a: number, d: number, t: Transform): number {
  return t === 'xor' ? (a ^ d) >>> 0 : (a + ((d >>> 1) ^ -(d & 1))) >>> 0;
}

function entropyBits(counts: Float64Array, total: number): number {
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= c * Math.log2(c / total);
  return bits;
}

/** Order-0 entropy (bits) of the four byte planes: what the dense encoding costs after the entropy coder. */
function planeCost(words: Uint32Array): number {
  const counts = [0, 1, 2, 3].map(() => new Float64Array(256));
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    counts[0]![w & 255]!++;
    counts[1]![(w >>> 8) & 255]!++;
    counts[2]![(w >>> 16) & 255]!++;
    counts[3]![w >>> 24]!++;
  }
  return counts.reduce((n, c) => n + entropyBits(c, words.length), 0);
}

/** Cost (bits) of the split encoding: entropy of the bit lengths + the bits below each leading one. */
function splitCost(words: Uint32Array): number {
  const counts = new Float64Array(33);
  let payload = 0;
  for (let i = 0; i < words.length; i++) {
    const length = 32 - Math.clz32(words[i]!);
    counts[length]!++;
    if (length > 1) payload += length - 1;
  }
  return entropyBits(counts, words.length) + payload;
}

/** Bit lengths (one byte each) then the bits below each word's leading one, packed LSB first. */
function splitEncode(words: Uint32Array): Uint8Array {
  const n = words.length;
  const lengths = new Uint8Array(n);
  const payload = new BitWriter(n * 2);
  for (let i = 0; i < n; i++) {
    const v = words[i]!;
    const length = 32 - Math.clz32(v);
    lengths[i] = length;
    if (length > 1) payload.write(v, length - 1);
  }
  const packed = payload.finish();
  const out = new Uint8Array(n + packed.byteLength);
  out.set(lengths, 0);
  out.set(packed, n);
  return out;
}

function splitDecode(section: Uint8Array, n: number, name: string): Uint32Array {
  if (section.byteLength < n) throw corrupt(`tensor ${name}: bit lengths are truncated`);
  let payloadBits = 0;
  for (let i = 0; i < n; i++) {
    const length = section[i]!;
    if (length > 32) throw corrupt(`tensor ${name}: bit length ${length}`);
    if (length > 1) payloadBits += length - 1;
  }
  if (section.byteLength !== n + Math.ceil(payloadBits / 8))
    throw corrupt(`tensor ${name}: split section length`);
  const reader = new BitReader(section.subarray(n));
  const words = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const length = section[i]!;
    if (length === 0) continue;
    words[i] = (reader.read(length - 1) + 2 ** (length - 1)) >>> 0;
  }
  return words;
}

/**
 * Positions of changed values as Rice-coded gaps (Golomb 1966, Rice 1979: the optimal prefix code family for the
 * geometric gaps of random positions): [u8 k][gaps, each unary(gap >> k) then its low k bits].
 */
function riceEncodeGaps(positions: Uint32Array): Uint8Array {
  const gaps = new Uint32Array(positions.length);
  let prev = -1;
  for (let i = 0; i < positions.length; i++) {
    gaps[i] = positions[i]! - prev - 1;
    prev = positions[i]!;
  }
  let best = 0;
  let bestBits = Infinity;
  for (let k = 0; k <= 24; k++) {
    let bits = 0;
    for (let i = 0; i < gaps.length; i++) bits += (gaps[i]! >>> k) + 1 + k;
    if (bits < bestBits) {
      bestBits = bits;
      best = k;
    }
  }
  const writer = new BitWriter(Math.ceil(bestBits / 8) + 1);
  writer.write(best, 8);
  for (let i = 0; i < gaps.length; i++) {
    writer.unary(gaps[i]! >>> best);
    writer.write(gaps[i]!, best);
  }
  return writer.finish();
}

function riceDecodePositions(
  section: Uint8Array,
  nnz: number,
  n: number,
  name: string,
): { positions: Uint32Array; bytes: number } {
  const reader = new BitReader(section);
  const positions = new Uint32Array(nnz);
  try {
    const k = reader.read(8);
    if (k > 24) throw corrupt(`tensor ${name}: Rice parameter ${k}`);
    let pos = -1;
    for (let i = 0; i < nnz; i++) {
      const gap = reader.unary(n) * 2 ** k + reader.read(k);
      pos += gap + 1;
      if (pos >= n) throw corrupt(`tensor ${name}: sparse position out of range`);
      positions[i] = pos;
    }
  } catch (error) {
    if (error instanceof DeltaError) throw error;
    throw corrupt(`tensor ${name}: sparse positions are truncated`);
  }
  return { positions, bytes: reader.bytesRead };
}

function encodeLossless(span: TensorSpan, a: Uint32Array | undefined, b: Uint32Array): Encoded {
  const base = { name: span.name, dims: span.dims, offset: span.offset };
  if (!a) {
    const section = new Uint8Array(b.length * 4);
    toPlanes(b, section, 0);
    return { entry: { ...base, enc: 'raw', length: section.byteLength }, section, changed: b.length };
  }
  let nnz = 0;
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) nnz++;
  if (nnz === 0)
    return { entry: { ...base, enc: 'same', length: 0 }, section: new Uint8Array(0), changed: 0 };
  if (nnz <= b.length * SPARSE_FRACTION) {
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
    return {
      entry: { ...base, enc: 'sparse', length: section.byteLength, nnz, transform },
      section,
      changed: nnz,
    };
  }
  const xor = diffWords(a, b, 'xor');
  const sub = diffWords(a, b, 'sub');
  const transform: Transform = planeCost(sub) < planeCost(xor) ? 'sub' : 'xor';
  const section = new Uint8Array(b.length * 4);
  toPlanes(transform === 'sub' ? sub : xor, section, 0);
  return { entry: { ...base, enc: 'dense', length: section.byteLength, transform }, section, changed: nnz };
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

function frame(header: DeltaHeader, body: Uint8Array, level: number | undefined): Uint8Array {
  const packed = compress(body, header.compression, level ?? (body.byteLength <= 1 << 20 ? 19 : 6));
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(PREFIX_BYTES + json.byteLength + packed.byteLength);
  out.set(new TextEncoder().encode(DELTA_MAGIC), 0);
  const view = new DataView(out.buffer);
  view.setUint16(8, DELTA_VERSION, true);
  view.setUint32(12, json.byteLength, true);
  out.set(json, PREFIX_BYTES);
  out.set(packed, PREFIX_BYTES + json.byteLength);
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

// ---------------------------------------------------------------------------------------------- decoding

/** Reads and validates a delta's header (what it applies to, what it rebuilds); malformed → DeltaError. */
export function readDeltaHeader(delta: Uint8Array): DeltaHeader & { bodyOffset: number } {
  if (delta.byteLength < 8 || new TextDecoder().decode(delta.subarray(0, 8)) !== DELTA_MAGIC) {
    throw new DeltaError('bad-magic', 'not an edgefl delta (bad magic)');
  }
  if (delta.byteLength < PREFIX_BYTES) throw new DeltaError('truncated', 'delta is truncated');
  const view = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  const version = view.getUint16(8, true);
  if (version !== DELTA_VERSION) {
    throw new DeltaError(
      'unsupported-version',
      `delta version ${version} is not supported (expected ${DELTA_VERSION})`,
    );
  }
  const headerLength = view.getUint32(12, true);
  if (headerLength > MAX_HEADER_BYTES || PREFIX_BYTES + headerLength > delta.byteLength) {
    throw new DeltaError('truncated', 'delta is truncated inside its header');
  }
  let json: unknown;
  try {
    json = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(
        delta.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength),
      ),
    );
  } catch {
    throw new DeltaError('bad-header', 'delta header is not UTF-8 JSON');
  }
  const parsed = HeaderSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DeltaError('bad-header', `delta header: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return { ...parsed.data, bodyOffset: PREFIX_BYTES + headerLength };
}

function corrupt(message: string): DeltaError {
  return new DeltaError('corrupt', message);
}

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
