import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import type { ClientUpdate, Weights } from './types.js';
import { checkUpdate, shapeOf } from './validate.js';

/**
 * Server-side optimisers: the server treats Δ = aggregate − current as a pseudo-gradient step.
 * - FedAvgM (Hsu, Qi, Brown 2019, "Measuring the Effects of Non-Identical Data Distribution for Federated
 *   Visual Classification"): v ← βv + Δ; x ← x + η·v.
 * - FedAdagrad / FedAdam / FedYogi (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2):
 *   m ← β₁m + (1−β₁)Δ; v ← v + Δ² (Adagrad) | β₂v + (1−β₂)Δ² (Adam) | v − (1−β₂)Δ²·sign(v − Δ²) (Yogi);
 *   x ← x + η·m/(√v + τ), with v initialised to τ² as in the paper (no bias correction).
 * State is O(d) float32 per buffer.
 */
export interface ServerOptimizer {
  readonly name: string;
  /** New global weights from the current ones and the round's aggregate (e.g. FedAvg of client weights). */
  step(current: readonly Float32Array[], aggregate: readonly Float32Array[]): Weights;
}

export interface FedAvgMOptions {
  serverLr?: number;
  momentum?: number;
}

export interface AdaptiveOptions {
  /** η (default 0.1). */
  serverLr?: number;
  /** β₁ (default 0.9). */
  beta1?: number;
  /** β₂ (default 0.99). */
  beta2?: number;
  /** τ, the adaptivity (default 1e-3). */
  tau?: number;
}

function inRange(v: number, lo: number, hi: number, name: string, hiOpen = true): number {
  if (!(typeof v === 'number' && v >= lo && (hiOpen ? v < hi : v <= hi))) {
    throw new InvalidParameterError(
      `${name} must be in [${lo}, ${hi}${hiOpen ? ')' : ']'}, got ${String(v)}`,
    );
  }
  return v;
}

function checkPair(
  current: readonly Float32Array[],
  aggregate: readonly Float32Array[],
  shape: number[] | null,
): number[] {
  const s = shapeOf(current as Float32Array[]);
  if (shape && (s.length !== shape.length || s.some((v, i) => v !== shape[i]))) {
    throw new InvalidUpdateError('layer-length', 'weights changed shape between rounds');
  }
  const bad = checkUpdate({ weights: aggregate, numExamples: 1 }, s, {});
  if (bad) throw new InvalidUpdateError(bad.reason, `aggregate: ${bad.message}`);
  const badCur = checkUpdate({ weights: current, numExamples: 1 }, undefined, {});
  if (badCur) throw new InvalidUpdateError(badCur.reason, `current weights: ${badCur.message}`);
  return s;
}

export function createFedAvgM(options: FedAvgMOptions = {}): ServerOptimizer {
  const lr = inRange(options.serverLr ?? 1, 0, Infinity, 'serverLr');
  const beta = inRange(options.momentum ?? 0.9, 0, 1, 'momentum');
  let v: Float32Array[] | null = null;
  let shape: number[] | null = null;
  return {
    name: 'fedavgm',
    step(current, aggregate) {
      shape = checkPair(current, aggregate, shape);
      v ??= shape.map((len) => new Float32Array(len));
      return current.map((x, l) => {
        const a = aggregate[l]!;
        const vl = v![l]!;
        const out = new Float32Array(x.length);
        for (let j = 0; j < x.length; j++) {
          const m = beta * vl[j]! + (a[j]! - x[j]!);
          vl[j] = m;
          out[j] = x[j]! + lr * m;
        }
        return out;
      });
    },
  };
}

function createAdaptive(
  kind: 'fedadagrad' | 'fedadam' | 'fedyogi',
  options: AdaptiveOptions,
): ServerOptimizer {
  const lr = inRange(options.serverLr ?? 0.1, 0, Infinity, 'serverLr');
  const b1 = inRange(options.beta1 ?? 0.9, 0, 1, 'beta1');
  const b2 = inRange(options.beta2 ?? 0.99, 0, 1, 'beta2');
  const tau = options.tau ?? 1e-3;
  if (!(tau > 0 && Number.isFinite(tau)))
    throw new InvalidParameterError('tau must be a positive finite number');
  let m: Float32Array[] | null = null;
  let v: Float32Array[] | null = null;
  let shape: number[] | null = null;
  return {
    name: kind,
    step(current, aggregate) {
      shape = checkPair(current, aggregate, shape);
      m ??= shape.map((len) => new Float32Array(len));
      v ??= shape.map((len) => new Float32Array(len).fill(tau * tau));
      return current.map((x, l) => {
        const a = aggregate[l]!;
        const ml = m![l]!;
        const vl = v![l]!;
        const out = new Float32Array(x.length);
        for (let j = 0; j < x.length; j++) {
          const d = a[j]! - x[j]!;
          const d2 = d * d;
          const mj = b1 * ml[j]! + (1 - b1) * d;
          let vj = vl[j]!;
          if (kind === 'fedadagrad') vj = vj + d2;
          else if (kind === 'fedadam') vj = b2 * vj + (1 - b2) * d2;
          else vj = vj - (1 - b2) * d2 * Math.sign(vj - d2);
          ml[j] = mj;
          vl[j] = vj;
          out[j] = x[j]! + (lr * mj) / (Math.sqrt(vj) + tau);
        }
        return out;
      });
    },
  };
}

export const createFedAdagrad = (options: AdaptiveOptions = {}): ServerOptimizer =>
  createAdaptive('fedadagrad', options);
export const createFedAdam = (options: AdaptiveOptions = {}): ServerOptimizer =>
  createAdaptive('fedadam', options);
export const createFedYogi = (options: AdaptiveOptions = {}): ServerOptimizer =>
  createAdaptive('fedyogi', options);

// ---------- FedProx ----------

/**
 * FedProx (Li et al. 2020, "Federated Optimization in Heterogeneous Networks"): the server sends μ in the round
 * config; the client minimises F(w) + (μ/2)‖w − w_global‖². The server aggregates as FedAvg.
 */
export interface RoundConfig {
  /** Proximal coefficient μ ≥ 0 (0 = plain FedAvg). */
  proximalMu?: number;
  [key: string]: unknown;
}

/** μ from a round config (0 when absent); throws `InvalidParameterError` when it is not a finite number ≥ 0. */
export function proximalMu(config: RoundConfig): number {
  const mu = config.proximalMu ?? 0;
  if (!(typeof mu === 'number' && mu >= 0 && Number.isFinite(mu)))
    throw new InvalidParameterError('proximalMu must be a finite number >= 0');
  return mu;
}

/** Adds the proximal gradient μ(w − w_global) to `grad` in place (client side, each local step). */
export function addProximalGradient(
  grad: Float32Array[],
  local: readonly Float32Array[],
  global: readonly Float32Array[],
  mu: number,
): void {
  if (mu === 0) return;
  for (let l = 0; l < grad.length; l++) {
    const g = grad[l]!;
    const w = local[l]!;
    const w0 = global[l]!;
    if (w.length !== g.length || w0.length !== g.length)
      throw new InvalidUpdateError('layer-length', `layer ${l} shapes differ`);
    for (let j = 0; j < g.length; j++) g[j] = g[j]! + mu * (w[j]! - w0[j]!);
  }
}

/** The proximal term (μ/2)‖w − w_global‖² (to add to the local loss). */
export function proximalTerm(
  local: readonly Float32Array[],
  global: readonly Float32Array[],
  mu: number,
): number {
  let s = 0;
  for (let l = 0; l < local.length; l++) {
    const w = local[l]!;
    const w0 = global[l]!;
    for (let j = 0; j < w.length; j++) {
      const t = w[j]! - w0[j]!;
      s += t * t;
    }
  }
  return (mu / 2) * s;
}

// ---------- FedBuff ----------

export interface FedBuffOptions {
  /** K: updates buffered before the server steps (default 10). */
  bufferSize?: number;
  /** η_g (default 1). */
  serverLr?: number;
  /** Updates staler than this are refused (default: no limit). */
  maxStaleness?: number;
  /** Staleness weight s(τ); default 1/√(1+τ) as in the paper. */
  stalenessWeight?: (staleness: number) => number;
}

export type FedBuffOutcome =
  | { applied: false; buffered: number; staleness: number }
  | { applied: true; version: number; weights: Weights; staleness: number };

/** Why FedBuff refused an update that was otherwise well-formed. */
export class StaleUpdateError extends Error {
  override readonly name = 'StaleUpdateError';
}

/**
 * FedBuff (Nguyen et al. 2022, "Federated Learning with Buffered Asynchronous Aggregation"): clients train on
 * whatever version they have and send Δ = local − base; the server adds s(τ)·Δ (τ = versions since the base)
 * into a buffer and, after K updates, steps x ← x + η_g·(buffer / K) and bumps the version. O(d) memory.
 */
export class FedBuffAggregator {
  private weights: Weights;
  private readonly buffer: Float64Array[];
  private buffered = 0;
  private ver = 0;
  private readonly k: number;
  private readonly lr: number;
  private readonly maxStaleness: number;
  private readonly weightOf: (staleness: number) => number;

  constructor(initial: readonly Float32Array[], options: FedBuffOptions = {}) {
    const bad = checkUpdate({ weights: initial, numExamples: 1 }, undefined, {});
    if (bad) throw new InvalidUpdateError(bad.reason, `initial weights: ${bad.message}`);
    this.weights = initial.map((l) => l.slice());
    this.buffer = initial.map((l) => new Float64Array(l.length));
    this.k = options.bufferSize ?? 10;
    if (!Number.isInteger(this.k) || this.k < 1)
      throw new InvalidParameterError('bufferSize must be a positive integer');
    this.lr = inRange(options.serverLr ?? 1, 0, Infinity, 'serverLr');
    this.maxStaleness = options.maxStaleness ?? Infinity;
    this.weightOf = options.stalenessWeight ?? ((s) => 1 / Math.sqrt(1 + s));
  }

  get version(): number {
    return this.ver;
  }

  current(): Weights {
    return this.weights.map((l) => l.slice());
  }

  /** Takes a client delta trained from `baseVersion`. Bad or too-stale updates throw and leave the state as is. */
  submit(update: ClientUpdate, baseVersion: number): FedBuffOutcome {
    const bad = checkUpdate(update, shapeOf(this.weights), { requireNumExamples: false });
    if (bad) throw new InvalidUpdateError(bad.reason, bad.message);
    if (!Number.isInteger(baseVersion) || baseVersion < 0 || baseVersion > this.ver) {
      throw new StaleUpdateError(
        `base version ${String(baseVersion)} is not a version this server has produced (current ${this.ver})`,
      );
    }
    const staleness = this.ver - baseVersion;
    if (staleness > this.maxStaleness)
      throw new StaleUpdateError(`update is ${staleness} versions stale (limit ${this.maxStaleness})`);
    const w = this.weightOf(staleness);
    if (!(w >= 0 && Number.isFinite(w)))
      throw new InvalidParameterError('staleness weight must be a finite number >= 0');
    for (let l = 0; l < this.buffer.length; l++) {
      const b = this.buffer[l]!;
      const d = update.weights[l]!;
      for (let j = 0; j < b.length; j++) b[j] = b[j]! + w * d[j]!;
    }
    this.buffered++;
    if (this.buffered < this.k) return { applied: false, buffered: this.buffered, staleness };
    const scale = this.lr / this.k;
    this.weights = this.weights.map((x, l) => {
      const b = this.buffer[l]!;
      const out = new Float32Array(x.length);
      for (let j = 0; j < x.length; j++) out[j] = x[j]! + scale * b[j]!;
      b.fill(0);
      return out;
    });
    this.buffered = 0;
    this.ver++;
    return { applied: true, version: this.ver, weights: this.current(), staleness };
  }
}
