/// <reference lib="es2025.float16" />
import { DecodeError, InvalidParameterError, InvalidUpdateError } from './errors.js';
import { secureUniform } from './rng.js';
import type { UniformSource, Weights } from './types.js';
import { allFinite, sizeOf } from './validate.js';

/**
 * Update compression and its byte encodings.
 * - float16: IEEE 754 binary16 (round to nearest even, native Float16Array).
 * - int8: per-block absmax scale with unbiased stochastic rounding (QSGD, Alistarh et al. 2017; blockwise scaling
 *   as in Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization").
 * - top-k sparsification with error feedback (Stich, Cordonnier, Jaggi 2018, "Sparsified SGD with Memory";
 *   Lin et al. 2018, "Deep Gradient Compression").
 *
 * Encoding (little endian): "EFLU" | version u8 (1) | codec u8 | reserved u16 | layer count u32 | layer lengths
 * u32[] | codec body. Decoders check every length and refuse anything inconsistent with `DecodeError`.
 */

const MAGIC = 0x554c4645; // "EFLU" read as little-endian u32
const VERSION = 1;
export const CODEC = { float32: 0, float16: 1, int8: 2, topk: 3 } as const;
export type CodecName = keyof typeof CODEC;
const MAX_LAYERS = 1 << 16;
const MAX_PARAMS = 1 << 30;

function assertFiniteWeights(weights: readonly Float32Array[]): void {
  weights.forEach((l, i) => {
    if (!(l instanceof Float32Array))
      throw new InvalidUpdateError('layer-length', `layer ${i} is not a Float32Array`);
    if (!allFinite(l)) throw new InvalidUpdateError('non-finite', `layer ${i} contains NaN or Infinity`);
  });
}

function header(
  codec: number,
  shape: readonly number[],
  bodyBytes: number,
): { bytes: Uint8Array; view: DataView; offset: number } {
  const offset = 12 + 4 * shape.length;
  const bytes = new Uint8Array(offset + bodyBytes);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint8(4, VERSION);
  view.setUint8(5, codec);
  view.setUint16(6, 0, true);
  view.setUint32(8, shape.length, true);
  shape.forEach((len, i) => view.setUint32(12 + 4 * i, len, true));
  return { bytes, view, offset };
}

interface Parsed {
  codec: number;
  shape: number[];
  view: DataView;
  offset: number;
  bytes: Uint8Array;
}

function parse(bytes: Uint8Array): Parsed {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('payload must be bytes');
  if (bytes.length < 12) throw new DecodeError('payload shorter than the header');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new DecodeError('not an edgefl update (bad magic)');
  if (view.getUint8(4) !== VERSION) throw new DecodeError(`unsupported encoding version ${view.getUint8(4)}`);
  const codec = view.getUint8(5);
  const layers = view.getUint32(8, true);
  if (layers === 0 || layers > MAX_LAYERS) throw new DecodeError(`implausible layer count ${layers}`);
  const offset = 12 + 4 * layers;
  if (bytes.length < offset) throw new DecodeError('payload truncated in the layer table');
  const shape: number[] = [];
  let total = 0;
  for (let i = 0; i < layers; i++) {
    const len = view.getUint32(12 + 4 * i, true);
    total += len;
    shape.push(len);
  }
  if (total > MAX_PARAMS) throw new DecodeError(`implausible parameter count ${total}`);
  return { codec, shape, view, offset, bytes };
}

function expectLength(p: Parsed, body: number): void {
  if (p.bytes.length !== p.offset + body) {
    throw new DecodeError(`payload has ${p.bytes.length} bytes, the header implies ${p.offset + body}`);
  }
}

/** Copies `n` bytes at `at` into a fresh (aligned) buffer. */
function slice(p: Parsed, at: number, n: number): ArrayBuffer {
  const start = p.bytes.byteOffset + at;
  return p.bytes.buffer.slice(start, start + n) as ArrayBuffer;
}

// ---------- float32 (lossless) ----------

export function encodeFloat32(weights: readonly Float32Array[]): Uint8Array {
  assertFiniteWeights(weights);
  const shape = weights.map((l) => l.length);
  const { bytes, offset } = header(CODEC.float32, shape, 4 * sizeOf(shape));
  let at = offset;
  for (const l of weights) {
    bytes.set(new Uint8Array(l.buffer, l.byteOffset, l.byteLength), at);
    at += l.byteLength;
  }
  return bytes;
}

// ---------- float16 ----------

/** Largest finite binary16 value; larger magnitudes are refused rather than turned into Infinity. */
export const FLOAT16_MAX = 65504;

export function encodeFloat16(weights: readonly Float32Array[]): Uint8Array {
  assertFiniteWeights(weights);
  for (const l of weights) {
    for (let j = 0; j < l.length; j++) {
      if (Math.abs(l[j]!) > FLOAT16_MAX)
        throw new InvalidParameterError(`value ${l[j]} does not fit float16; use int8 with per-block scales`);
    }
  }
  const shape = weights.map((l) => l.length);
  const { bytes, offset } = header(CODEC.float16, shape, 2 * sizeOf(shape));
  let at = offset;
  for (const l of weights) {
    const h = Float16Array.from(l);
    bytes.set(new Uint8Array(h.buffer), at);
    at += h.byteLength;
  }
  return bytes;
}

// ---------- int8 with per-block scales and stochastic rounding ----------

export interface Int8Options {
  /** Values per scale (default 256). */
  blockSize?: number;
  /** Uniform source for stochastic rounding; the CSPRNG by default, a seeded one for reproducible tests. */
  uniform?: UniformSource;
}

export function encodeInt8(weights: readonly Float32Array[], options: Int8Options = {}): Uint8Array {
  assertFiniteWeights(weights);
  const block = options.blockSize ?? 256;
  if (!Number.isInteger(block) || block < 1 || block > 1 << 20)
    throw new InvalidParameterError('blockSize must be an integer in [1, 2^20]');
  const uniform = options.uniform ?? secureUniform;
  const shape = weights.map((l) => l.length);
  const blocks = shape.reduce((a, len) => a + Math.ceil(len / block), 0);
  const { bytes, view, offset } = header(CODEC.int8, shape, 4 + 4 * blocks + sizeOf(shape));
  view.setUint32(offset, block, true);
  let scaleAt = offset + 4;
  let qAt = offset + 4 + 4 * blocks;
  for (const l of weights) {
    for (let b = 0; b < l.length; b += block) {
      const end = Math.min(l.length, b + block);
      let absMax = 0;
      for (let j = b; j < end; j++) absMax = Math.max(absMax, Math.abs(l[j]!));
      const scale = Math.fround(absMax / 127);
      view.setFloat32(scaleAt, scale, true);
      scaleAt += 4;
      for (let j = b; j < end; j++) {
        let q = 0;
        if (scale > 0) {
          const v = l[j]! / scale;
          const fl = Math.floor(v);
          q = fl + (uniform() < v - fl ? 1 : 0); // unbiased: E[q] = v
          q = Math.max(-127, Math.min(127, q));
        }
        view.setInt8(qAt++, q);
      }
    }
  }
  return bytes;
}

// ---------- top-k sparsification with error feedback ----------

export interface SparseUpdate {
  shape: number[];
  /** Flat indices over all layers, ascending. */
  indices: Uint32Array;
  values: Float32Array;
}

export function encodeSparse(sparse: SparseUpdate): Uint8Array {
  const k = sparse.indices.length;
  if (sparse.values.length !== k) throw new InvalidParameterError('indices and values differ in length');
  const { bytes, view, offset } = header(CODEC.topk, sparse.shape, 4 + 8 * k);
  view.setUint32(offset, k, true);
  const d = sizeOf(sparse.shape);
  for (let i = 0; i < k; i++) {
    const idx = sparse.indices[i]!;
    if (idx >= d || (i > 0 && idx <= sparse.indices[i - 1]!))
      throw new InvalidParameterError('sparse indices must be ascending and in range');
    if (!Number.isFinite(sparse.values[i]!))
      throw new InvalidUpdateError('non-finite', 'sparse value is NaN or Infinity');
    view.setUint32(offset + 4 + 4 * i, idx, true);
    view.setFloat32(offset + 4 + 4 * k + 4 * i, sparse.values[i]!, true);
  }
  return bytes;
}

/** Dense weights from a sparse update (zeros elsewhere). */
export function densify(sparse: SparseUpdate): Weights {
  const out = sparse.shape.map((len) => new Float32Array(len));
  const starts: number[] = [];
  let s = 0;
  for (const len of sparse.shape) {
    starts.push(s);
    s += len;
  }
  let layer = 0;
  for (let i = 0; i < sparse.indices.length; i++) {
    const idx = sparse.indices[i]!;
    while (layer + 1 < starts.length && idx >= starts[layer + 1]!) layer++;
    out[layer]![idx - starts[layer]!] = sparse.values[i]!;
  }
  return out;
}

/**
 * Top-k compressor with error feedback: what is not sent this round stays in a residual (memory) and is added to
 * the next update, so nothing is lost over time. One instance per device and model; O(d) memory.
 */
export class TopKCompressor {
  private readonly residual: Float32Array[];
  private readonly d: number;

  constructor(
    readonly shape: readonly number[],
    private readonly k: number,
  ) {
    this.d = sizeOf(shape);
    if (!Number.isInteger(k) || k < 1 || k > this.d)
      throw new InvalidParameterError(`k must be an integer in [1, ${this.d}]`);
    this.residual = shape.map((len) => new Float32Array(len));
  }

  /** Adds `update` to the residual, sends the k largest magnitudes, keeps the rest. */
  compress(update: readonly Float32Array[]): SparseUpdate {
    if (update.length !== this.shape.length || update.some((l, i) => l.length !== this.shape[i])) {
      throw new InvalidUpdateError('layer-length', 'update shape differs from the compressor shape');
    }
    assertFiniteWeights(update);
    const mags = new Float32Array(this.d);
    let p = 0;
    for (let l = 0; l < update.length; l++) {
      const r = this.residual[l]!;
      const u = update[l]!;
      for (let j = 0; j < r.length; j++, p++) {
        r[j] = r[j]! + u[j]!;
        mags[p] = Math.abs(r[j]!);
      }
    }
    // threshold = the k-th largest magnitude (native sort of a copy; O(d log d), simple and exact)
    const sorted = mags.slice().sort();
    const threshold = sorted[this.d - this.k]!;
    let above = 0;
    for (let i = 0; i < this.d; i++) if (mags[i]! > threshold) above++;
    let tiesLeft = this.k - above; // ties at the threshold: the lowest indices win
    const indices = new Uint32Array(this.k);
    const values = new Float32Array(this.k);
    let n = 0;
    p = 0;
    for (let l = 0; l < this.residual.length; l++) {
      const r = this.residual[l]!;
      for (let j = 0; j < r.length; j++, p++) {
        const m = mags[p]!;
        if (m > threshold || (m === threshold && tiesLeft > 0)) {
          if (m === threshold) tiesLeft--;
          indices[n] = p;
          values[n] = r[j]!;
          n++;
          r[j] = 0;
        }
      }
    }
    return { shape: [...this.shape], indices, values };
  }

  /** The error-feedback memory (what has not been sent yet). */
  pending(): readonly Float32Array[] {
    return this.residual;
  }
}

// ---------- decoding ----------

export interface DecodedUpdate {
  codec: CodecName;
  /** Dense weights (top-k payloads are densified). */
  weights: Weights;
  /** For top-k payloads, the sparse form. */
  sparse?: SparseUpdate;
}

/** Decodes any payload produced by the encoders above; throws `DecodeError` on anything malformed. */
export function decodeUpdate(bytes: Uint8Array): DecodedUpdate {
  const p = parse(bytes);
  const d = sizeOf(p.shape);
  switch (p.codec) {
    case CODEC.float32: {
      expectLength(p, 4 * d);
      const all = new Float32Array(slice(p, p.offset, 4 * d));
      const weights = splitLayers(all, p.shape);
      checkFinite(weights);
      return { codec: 'float32', weights };
    }
    case CODEC.float16: {
      expectLength(p, 2 * d);
      const half = new Float16Array(slice(p, p.offset, 2 * d));
      const weights = splitLayers(Float32Array.from(half), p.shape);
      checkFinite(weights);
      return { codec: 'float16', weights };
    }
    case CODEC.int8: {
      if (p.bytes.length < p.offset + 4) throw new DecodeError('int8 payload truncated');
      const block = p.view.getUint32(p.offset, true);
      if (block < 1 || block > 1 << 20) throw new DecodeError(`implausible block size ${block}`);
      const blocks = p.shape.reduce((a, len) => a + Math.ceil(len / block), 0);
      expectLength(p, 4 + 4 * blocks + d);
      let scaleAt = p.offset + 4;
      let qAt = p.offset + 4 + 4 * blocks;
      const weights = p.shape.map((len) => {
        const out = new Float32Array(len);
        for (let b = 0; b < len; b += block) {
          const scale = p.view.getFloat32(scaleAt, true);
          scaleAt += 4;
          if (!(scale >= 0 && Number.isFinite(scale)))
            throw new DecodeError('int8 payload has an invalid scale');
          const end = Math.min(len, b + block);
          for (let j = b; j < end; j++) out[j] = p.view.getInt8(qAt++) * scale;
        }
        return out;
      });
      return { codec: 'int8', weights };
    }
    case CODEC.topk: {
      if (p.bytes.length < p.offset + 4) throw new DecodeError('top-k payload truncated');
      const k = p.view.getUint32(p.offset, true);
      if (k > d) throw new DecodeError(`top-k payload claims ${k} values for ${d} parameters`);
      expectLength(p, 4 + 8 * k);
      const indices = new Uint32Array(k);
      const values = new Float32Array(k);
      for (let i = 0; i < k; i++) {
        const idx = p.view.getUint32(p.offset + 4 + 4 * i, true);
        if (idx >= d || (i > 0 && idx <= indices[i - 1]!))
          throw new DecodeError('top-k indices must be ascending and in range');
        const v = p.view.getFloat32(p.offset + 4 + 4 * k + 4 * i, true);
        if (!Number.isFinite(v)) throw new DecodeError('top-k value is NaN or Infinity');
        indices[i] = idx;
        values[i] = v;
      }
      const sparse = { shape: p.shape, indices, values };
      return { codec: 'topk', weights: densify(sparse), sparse };
    }
    default:
      throw new DecodeError(`unknown codec ${p.codec}`);
  }
}

function splitLayers(all: Float32Array, shape: readonly number[]): Weights {
  const out: Weights = [];
  let at = 0;
  for (const len of shape) {
    out.push(all.slice(at, at + len));
    at += len;
  }
  return out;
}

function checkFinite(weights: Weights): void {
  weights.forEach((l, i) => {
    if (!allFinite(l)) throw new DecodeError(`layer ${i} contains NaN or Infinity`);
  });
}
