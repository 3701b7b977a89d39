import { createNormal, createSeededUniform, type NormalSource, type UniformSource } from '@edgefl/fl';

/**
 * The simulator's seeded randomness: one stream per purpose (`stream(seed, 'split')`, `stream(seed, 'partition')`,
 * …), so changing how one part draws never shifts another part's draws. Built on libs/fl's sfc32 generator and
 * Box–Muller sampler; not for cryptography or DP noise.
 */
export class SimRandom {
  readonly uniform: UniformSource;
  readonly #normal: NormalSource;

  constructor(seed: number | string) {
    this.uniform = createSeededUniform(seed);
    this.#normal = createNormal(this.uniform);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uniform();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** N(mean, sd²). */
  normal(mean = 0, sd = 1): number {
    return mean + sd * this.#normal();
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -mean * Math.log(1 - this.uniform());
  }

  /** Poisson(λ) (Knuth's product method for small λ, a rounded normal approximation above 30). */
  poisson(lambda: number): number {
    if (lambda > 30) return Math.max(0, Math.round(this.normal(lambda, Math.sqrt(lambda))));
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = this.uniform();
    while (p > limit) {
      k++;
      p *= this.uniform();
    }
    return k;
  }

  /** Index drawn with probability proportional to `weights` (non-negative, not all zero). */
  categorical(weights: ArrayLike<number>): number {
    let total = 0;
    for (let i = 0; i < weights.length; i++) total += weights[i]!;
    let u = this.uniform() * total;
    for (let i = 0; i < weights.length; i++) {
      u -= weights[i]!;
      if (u < 0) return i;
    }
    for (let i = weights.length - 1; i >= 0; i--) if (weights[i]! > 0) return i;
    throw new RangeError('categorical: all weights are zero');
  }

  /** Fisher–Yates shuffle in place. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /**
   * log of a Gamma(shape, 1) draw. Marsaglia & Tsang (2000) for shape ≥ 1; for shape < 1 their boost
   * Gamma(a) = Gamma(a + 1)·U^(1/a), kept in log space so tiny shapes (Dirichlet α = 0.01) do not underflow to 0.
   * Hand-written: a dozen lines, and it must draw from this seeded stream (npm's samplers bring their own PRNGs).
   */
  logGamma(shape: number): number {
    if (!(shape > 0) || !Number.isFinite(shape))
      throw new RangeError(`gamma shape must be > 0, got ${shape}`);
    if (shape < 1) return this.logGamma(shape + 1) + Math.log(1 - this.uniform()) / shape;
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.#normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.uniform();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return Math.log(d * v);
    }
  }

  /** A draw from Dirichlet(concentration) (normalized Gamma draws, computed from their logs). */
  dirichlet(concentration: ArrayLike<number>): Float64Array {
    const k = concentration.length;
    const logs = new Float64Array(k);
    let max = -Infinity;
    for (let i = 0; i < k; i++) {
      logs[i] = this.logGamma(concentration[i]!);
      max = Math.max(max, logs[i]!);
    }
    let sum = 0;
    for (let i = 0; i < k; i++) sum += logs[i] = Math.exp(logs[i]! - max);
    for (let i = 0; i < k; i++) logs[i]! /= sum;
    return logs;
  }
}

/** The stream for one purpose of one seed. */
export function stream(seed: number, purpose: string): SimRandom {
  return new SimRandom(`${seed}:${purpose}`);
}
