import { randomFillSync } from 'node:crypto';
import type { UniformSource } from './types.js';

/**
 * Deterministic uniform source in [0, 1) from a seed: sfc32 (Chris Doty-Humphrey's Small Fast Counter), seeded via
 * splitmix32. For tests, bucketing and stochastic rounding where reproducibility matters — NEVER for DP noise.
 * Hand-written because it is a dozen lines and libs/fl must stay free of dependencies.
 */
export function createSeededUniform(seed: number | string): UniformSource {
  let h = typeof seed === 'number' ? seed >>> 0 || 0x9e3779b9 : hashString(seed);
  const next32 = (): number => {
    h = (h + 0x9e3779b9) | 0;
    let z = h;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = next32();
  let b = next32();
  let c = next32();
  let d = next32();
  const sfc = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++) sfc();
  // 53 random bits → a double in [0, 1)
  return () => ((sfc() >>> 5) * 67108864 + (sfc() >>> 6)) / 9007199254740992;
}

function hashString(s: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

const POOL_WORDS = 8192;
const pool = new Uint32Array(POOL_WORDS);
let poolPos = POOL_WORDS;

function secureWord(): number {
  if (poolPos >= POOL_WORDS) {
    randomFillSync(pool);
    poolPos = 0;
  }
  return pool[poolPos++]!;
}

/** Uniform in [0, 1) with 53 bits from node:crypto's CSPRNG (refilled in 32 KiB batches). */
export const secureUniform: UniformSource = () =>
  ((secureWord() >>> 5) * 67108864 + (secureWord() >>> 6)) / 9007199254740992;

/** Source of standard normal N(0, 1) samples. */
export type NormalSource = () => number;

/**
 * Standard normal samples by the Box–Muller transform (Box & Muller 1958) over a uniform source; the second
 * value of each pair is kept for the next call. Use `createNormal(secureUniform)` (the default everywhere)
 * for DP noise.
 */
export function createNormal(uniform: UniformSource): NormalSource {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u1 = 1 - uniform(); // (0, 1]: log is finite
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    spare = r * Math.sin(2 * Math.PI * u2);
    return r * Math.cos(2 * Math.PI * u2);
  };
}

/** N(0, 1) from the cryptographically secure source. */
export function secureNormal(): NormalSource {
  return createNormal(secureUniform);
}

/** Fisher–Yates permutation of 0..n-1 from a uniform source. */
export function permutation(n: number, uniform: UniformSource): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
