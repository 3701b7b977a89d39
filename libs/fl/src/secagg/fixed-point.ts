/**
 * Fixed-point encoding of bounded updates into the ring Z_2^k, and exact ring arithmetic on 32-bit lanes.
 *
 * A coordinate v ∈ [-B, B] is encoded as x = round(v · 2^p), so |x| ≤ M = ⌈B · 2^p⌉ and the rounding error is at
 * most 2^-(p+1). The sum of n encodings has |Σx| ≤ n·M, and it is decoded without wrapping from its residue mod 2^k
 * (two's complement) when n·M ≤ 2^(k-1) − 1, so
 *
 *     k = bitLength(n · M) + 1,        bitLength(m) = ⌊log₂ m⌋ + 1,
 *
 * and the decoded sum / 2^p is within n · 2^-(p+1) < n · 2^-p of the exact sum of the real values (Bonawitz et al.
 * 2017 §3; Bell et al. 2020 §6 use the same bound). The default p is the largest in [16, 24] for which k ≤ 32 (one
 * 32-bit lane per coordinate, masked input as big as the float32 update), else the largest for which k ≤ 64 (two
 * lanes); 24 because a float32 carries 24 significant bits, 16 as the floor of the precision promise.
 *
 * Lanes: k ≤ 32 → one Uint32 per coordinate, arithmetic mod 2^32 (`>>> 0`); k ≤ 64 → two Uint32 per coordinate
 * (low word first, i.e. a little-endian 64-bit word), added as a BigUint64Array view of the same bytes, whose stores
 * wrap mod 2^64. Vectors are reduced mod 2^k only when sent or decoded. Measured here (Node 24, 100,000 coordinates,
 * median of 3): 32-bit lanes 0.16 ms per add, BigUint64Array 0.14 ms, two Uint32 lanes with explicit carries
 * 0.65 ms, exact float64 with a conditional subtract 0.39 ms; so 64-bit rings use BigUint64Array.
 */
import { InvalidParameterError, InvalidUpdateError } from '../errors.js';

export const MIN_PRECISION_BITS = 16;
export const MAX_PRECISION_BITS = 24;
export const MAX_MODULUS_BITS = 64;

export interface FixedPointPlan {
  /** Number of clients whose encodings may be summed. */
  readonly clients: number;
  /** Every coordinate lies in [-bound, bound]. */
  readonly bound: number;
  /** Fractional bits p. */
  readonly precisionBits: number;
  /** k: the ring is Z_2^k. */
  readonly modulusBits: number;
}

function bitLength(m: bigint): number {
  return m === 0n ? 0 : m.toString(2).length;
}

function checkBound(bound: number, p: number): bigint {
  if (!Number.isFinite(bound) || bound <= 0)
    throw new InvalidParameterError('the bound must be a positive number');
  const scaled = Math.ceil(bound * 2 ** p);
  if (!Number.isSafeInteger(scaled))
    throw new InvalidParameterError(`bound ${bound} × 2^${p} is not a safe integer`);
  return BigInt(scaled);
}

/** The smallest k for which the sum of `clients` encodings of values in [-bound, bound] at p bits cannot wrap. */
export function requiredModulusBits(clients: number, bound: number, precisionBits: number): number {
  if (!Number.isInteger(clients) || clients < 1) throw new InvalidParameterError('clients must be ≥ 1');
  if (!Number.isInteger(precisionBits) || precisionBits < 0 || precisionBits > 52)
    throw new InvalidParameterError('precision bits must be an integer in [0, 52]');
  return bitLength(BigInt(clients) * checkBound(bound, precisionBits)) + 1;
}

/** Chooses p (unless given) and k for `clients` clients and values in [-bound, bound] (see the file comment). */
export function planFixedPoint(options: {
  clients: number;
  bound: number;
  precisionBits?: number;
}): FixedPointPlan {
  const { clients, bound } = options;
  let p = options.precisionBits;
  if (p === undefined) {
    for (const lanes of [32, 64]) {
      for (let q = MAX_PRECISION_BITS; q >= MIN_PRECISION_BITS && p === undefined; q--)
        if (requiredModulusBits(clients, bound, q) <= lanes) p = q;
      if (p !== undefined) break;
    }
    p ??= MIN_PRECISION_BITS;
  }
  if (p < MIN_PRECISION_BITS)
    throw new InvalidParameterError(`precision must be at least ${MIN_PRECISION_BITS} fractional bits`);
  const k = requiredModulusBits(clients, bound, p);
  if (k > MAX_MODULUS_BITS)
    throw new InvalidParameterError(
      `${clients} clients × bound ${bound} at ${p} fractional bits need a ${k}-bit modulus (at most ${MAX_MODULUS_BITS})`,
    );
  return { clients, bound, precisionBits: p, modulusBits: k };
}

/** 32-bit lanes per coordinate for a modulus of k bits. */
export function lanesPerCoordinate(modulusBits: number): 1 | 2 {
  return modulusBits <= 32 ? 1 : 2;
}

/**
 * Encodes an update (layers) into ring lanes: x = round(v · 2^p) mod 2^k. A value outside [-bound, bound] or
 * non-finite is refused (`InvalidUpdateError`), never clipped silently.
 */
export function encodeFixedPoint(
  layers: readonly Float32Array[],
  plan: Pick<FixedPointPlan, 'bound' | 'precisionBits' | 'modulusBits'>,
): Uint32Array {
  const lanes = lanesPerCoordinate(plan.modulusBits);
  const d = layers.reduce((a, l) => a + l.length, 0);
  const out = new Uint32Array(d * lanes);
  const scale = 2 ** plan.precisionBits;
  const { bound } = plan;
  let at = 0;
  for (let l = 0; l < layers.length; l++) {
    const layer = layers[l]!;
    for (let i = 0; i < layer.length; i++) {
      const v = layer[i]!;
      if (!(v >= -bound && v <= bound)) {
        throw Number.isFinite(v)
          ? new InvalidUpdateError(
              'norm-exceeded',
              `layer ${l} [${i}] = ${v} is outside [-${bound}, ${bound}]`,
            )
          : new InvalidUpdateError('non-finite', `layer ${l} [${i}] is ${v}`);
      }
      const x = Math.round(v * scale);
      if (lanes === 1) out[at++] = x >>> 0;
      else {
        out[at++] = x >>> 0; // ToUint32 is exact modular reduction for any safe integer
        out[at++] = Math.floor(x / 4294967296) >>> 0;
      }
    }
  }
  reduceModulus(out, plan.modulusBits);
  return out;
}

/** Reduces lanes (mod 2^32 or 2^64 arithmetic) to the ring Z_2^k in place. */
export function reduceModulus(ring: Uint32Array, modulusBits: number): void {
  if (modulusBits === 32 || modulusBits === 64) return;
  if (modulusBits < 32) {
    const mask = 2 ** modulusBits - 1;
    for (let i = 0; i < ring.length; i++) ring[i] = ring[i]! & mask;
  } else {
    const mask = 2 ** (modulusBits - 32) - 1;
    for (let i = 1; i < ring.length; i += 2) ring[i] = ring[i]! & mask;
  }
}

/** A BigUint64Array over the same bytes (a copy when they are not 8-byte aligned). */
function words64(v: Uint32Array): BigUint64Array {
  const aligned = v.byteOffset % 8 === 0 ? v : v.slice();
  return new BigUint64Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
}

/** acc op= v in 64-bit words; written back when acc itself had to be copied. */
function op64(acc: Uint32Array, v: Uint32Array, add: boolean): void {
  const a = words64(acc);
  const b = words64(v);
  if (add) for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
  else for (let i = 0; i < a.length; i++) a[i]! -= b[i]!;
  if (a.buffer !== acc.buffer) acc.set(new Uint32Array(a.buffer, a.byteOffset, acc.length));
}

/** acc += v (mod 2^32 per lane, or mod 2^64 per lane pair). Lanes are reduced to Z_2^k only when sent or decoded. */
export function ringAdd(acc: Uint32Array, v: Uint32Array, lanes: 1 | 2): void {
  if (acc.length !== v.length) throw new InvalidParameterError('ring vectors differ in length');
  if (lanes === 2) return op64(acc, v, true);
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! + v[i]!) >>> 0;
}

/** acc −= v in the same lanes. */
export function ringSub(acc: Uint32Array, v: Uint32Array, lanes: 1 | 2): void {
  if (acc.length !== v.length) throw new InvalidParameterError('ring vectors differ in length');
  if (lanes === 2) return op64(acc, v, false);
  for (let i = 0; i < acc.length; i++) acc[i] = (acc[i]! - v[i]!) >>> 0;
}

/** The signed integers a reduced ring vector stands for (two's complement mod 2^k), exactly, as BigInts. */
export function decodeRingExact(ring: Uint32Array, modulusBits: number): bigint[] {
  const lanes = lanesPerCoordinate(modulusBits);
  const half = 1n << BigInt(modulusBits - 1);
  const mod = 1n << BigInt(modulusBits);
  const out: bigint[] = [];
  for (let i = 0; i < ring.length; i += lanes) {
    const u = lanes === 1 ? BigInt(ring[i]!) : (BigInt(ring[i + 1]!) << 32n) | BigInt(ring[i]!);
    out.push(u >= half ? u - mod : u);
  }
  return out;
}

/**
 * Decodes a reduced ring vector to real values split into layers: signed integer / 2^p, in float64 (exact for
 * |Σx| < 2^53; beyond, the nearest double of the exact integer).
 */
export function decodeFixedPoint(
  ring: Uint32Array,
  plan: Pick<FixedPointPlan, 'precisionBits' | 'modulusBits'>,
  layerLengths: readonly number[],
): Float64Array[] {
  const k = plan.modulusBits;
  const lanes = lanesPerCoordinate(k);
  const inv = 2 ** -plan.precisionBits;
  const exact = k > 53 ? decodeRingExact(ring, k) : null;
  const half = 2 ** (k - 1);
  const mod = 2 ** k;
  let at = 0;
  return layerLengths.map((len) => {
    const out = new Float64Array(len);
    for (let i = 0; i < len; i++, at++) {
      let x: number;
      if (exact) x = Number(exact[at]!);
      else {
        const u = lanes === 1 ? ring[at]! : ring[2 * at + 1]! * 4294967296 + ring[2 * at]!;
        x = u >= half ? u - mod : u;
      }
      out[i] = x * inv;
    }
    return out;
  });
}
