// The encodings of one tensor's section, as plain functions over Uint32Array (the float bit patterns): byte
// planes, the difference of float bits (XOR or zigzagged integer difference), the order-0 entropy estimates that
// choose between them, the split (bit length + low bits) coding of sparse values, and Rice-coded positions.
import { BitReader, BitWriter } from '../bits.js';
import { DeltaError } from '../errors.js';
import { corrupt } from './format.js';

/** Byte p of every word, for p = 0 … width−1, written at `at` (plane after plane). */
export function toPlanes(words: Uint32Array, out: Uint8Array, at: number, width: 1 | 2 | 4 = 4): void {
  const n = words.length;
  for (let p = 0; p < width; p++) {
    const shift = 8 * p;
    const base = at + p * n;
    for (let i = 0; i < n; i++) out[base + i] = words[i]! >>> shift;
  }
}

/** The words back from their byte planes. */
export function fromPlanes(bytes: Uint8Array, at: number, n: number, width: 1 | 2 | 4 = 4): Uint32Array {
  const words = new Uint32Array(n);
  for (let p = 0; p < width; p++) {
    const shift = 8 * p;
    const base = at + p * n;
    for (let i = 0; i < n; i++) words[i]! |= bytes[base + i]! << shift;
  }
  return words;
}

export type Transform = 'xor' | 'sub';

/** The difference of two float bit patterns: XOR, or the zigzagged integer difference mod 2³². */
export function diffWords(a: Uint32Array, b: Uint32Array, t: Transform, index?: Uint32Array): Uint32Array {
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

export function undiffWord(a: number, d: number, t: Transform): number {
  return t === 'xor' ? (a ^ d) >>> 0 : (a + ((d >>> 1) ^ -(d & 1))) >>> 0;
}

export function entropyBits(counts: Float64Array, total: number): number {
  let bits = 0;
  for (const c of counts) if (c > 0) bits -= c * Math.log2(c / total);
  return bits;
}

/** Order-0 entropy (bits) of the four byte planes: what the dense encoding costs after the entropy coder. */
export function planeCost(words: Uint32Array): number {
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
export function splitCost(words: Uint32Array): number {
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
export function splitEncode(words: Uint32Array): Uint8Array {
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

export function splitDecode(section: Uint8Array, n: number, name: string): Uint32Array {
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
export function riceEncodeGaps(positions: Uint32Array): Uint8Array {
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

export function riceDecodePositions(
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
