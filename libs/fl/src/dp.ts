import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import { WeightedSumAccumulator } from './fedavg.js';
import { secureNormal, type NormalSource } from './rng.js';
import type { AggregateResult, ClientUpdate, Weights } from './types.js';
import { checkUpdate, l2Norm, type UpdateConstraints } from './validate.js';

/**
 * Differential privacy for federated updates: per-update L2 clipping and Gaussian noise (the Gaussian mechanism,
 * Dwork & Roth 2014 §3.5; DP-FedAvg, McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private
 * Recurrent Language Models"). Noise comes from node:crypto by default (`secureNormal`); a seeded source must be
 * passed explicitly and is for tests only.
 *
 * Known limitation: Box–Muller over doubles is not a discrete Gaussian; floating-point attacks on DP noise
 * (Mironov 2012) are not mitigated here.
 */

function positive(value: number, name: string): number {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new InvalidParameterError(`${name} must be a positive finite number`);
  }
  return value;
}

/** Scales `weights` in place so that its L2 norm is at most `clipNorm`; returns the norm before clipping. */
export function clipL2InPlace(weights: Float32Array[], clipNorm: number): number {
  positive(clipNorm, 'clipNorm');
  const norm = l2Norm(weights);
  if (norm > clipNorm) {
    const scale = clipNorm / norm;
    for (const layer of weights) for (let j = 0; j < layer.length; j++) layer[j] = layer[j]! * scale;
  }
  return norm;
}

/** A clipped copy of `weights` (L2 norm ≤ clipNorm). */
export function clipL2(weights: readonly Float32Array[], clipNorm: number): Weights {
  const copy = weights.map((l) => l.slice());
  clipL2InPlace(copy, clipNorm);
  return copy;
}

/** Adds N(0, std²) to every coordinate in place. */
export function addGaussianNoise(
  weights: Float32Array[],
  std: number,
  normal: NormalSource = secureNormal(),
): void {
  if (!(typeof std === 'number' && std >= 0 && Number.isFinite(std)))
    throw new InvalidParameterError('noise std must be a finite number >= 0');
  if (std === 0) return;
  for (const layer of weights) for (let j = 0; j < layer.length; j++) layer[j] = layer[j]! + std * normal();
}

export interface GaussianMechanism {
  /** L2 clipping bound C (the sensitivity of one contribution). */
  clipNorm: number;
  /** σ: the noise std is σ·C. */
  noiseMultiplier: number;
}

/**
 * Local DP on the device: clip the update to C and add N(0, (σC)²) before it leaves the device.
 * Returns a new array; the input is untouched.
 */
export function localDp(
  weights: readonly Float32Array[],
  mech: GaussianMechanism,
  normal: NormalSource = secureNormal(),
): Weights {
  positive(mech.clipNorm, 'clipNorm');
  if (!(mech.noiseMultiplier >= 0 && Number.isFinite(mech.noiseMultiplier)))
    throw new InvalidParameterError('noiseMultiplier must be >= 0');
  for (let l = 0; l < weights.length; l++) {
    if (!weights[l]!.every(Number.isFinite))
      throw new InvalidUpdateError('non-finite', `layer ${l} contains NaN or Infinity`);
  }
  const out = clipL2(weights, mech.clipNorm);
  addGaussianNoise(out, mech.noiseMultiplier * mech.clipNorm, normal);
  return out;
}

/**
 * Central DP on the aggregate (DP-FedAvg, McMahan et al. 2018): each update (a delta) is clipped to C as it
 * arrives, the clipped updates are summed (unweighted: weights would change the sensitivity), N(0, (σC)²) is
 * added to the sum once, and the sum is divided by `expectedClients` (the fixed denominator of the paper,
 * qN for Poisson sampling) or by the number of updates. Streaming: O(d) memory.
 */
export class CentralDpAccumulator {
  private readonly sum: WeightedSumAccumulator;

  constructor(
    private readonly mech: GaussianMechanism,
    constraints: Omit<UpdateConstraints, 'maxNorm'> = {},
    private readonly normal: NormalSource = secureNormal(),
  ) {
    positive(mech.clipNorm, 'clipNorm');
    if (!(mech.noiseMultiplier >= 0 && Number.isFinite(mech.noiseMultiplier)))
      throw new InvalidParameterError('noiseMultiplier must be >= 0');
    this.sum = new WeightedSumAccumulator('sum', { ...constraints, requireNumExamples: false });
    this.shape = constraints.shape;
  }

  private readonly shape: readonly number[] | undefined;

  get count(): number {
    return this.sum.count;
  }

  add(update: ClientUpdate): void {
    const bad = checkUpdate(update, this.shape, { requireNumExamples: false });
    if (bad) throw new InvalidUpdateError(bad.reason, bad.message);
    this.sum.add({ weights: clipL2(update.weights, this.mech.clipNorm), numExamples: 1 });
  }

  /** Noised mean. Each call draws fresh noise, so call it once per round. */
  result(expectedClients?: number): AggregateResult {
    const sums = this.sum.sums();
    const denom = expectedClients ?? this.sum.count;
    positive(denom, 'expectedClients');
    const std = this.mech.noiseMultiplier * this.mech.clipNorm;
    const weights = sums.map((s) => {
      const out = new Float32Array(s.length);
      for (let j = 0; j < s.length; j++) out[j] = (s[j]! + std * this.normal()) / denom;
      return out;
    });
    return { weights };
  }
}

/** Batch form of `CentralDpAccumulator`. */
export function centralDp(
  updates: readonly ClientUpdate[],
  mech: GaussianMechanism,
  options: { expectedClients?: number; normal?: NormalSource } = {},
): AggregateResult {
  const acc = new CentralDpAccumulator(mech, {}, options.normal);
  updates.forEach((u, i) => {
    try {
      acc.add(u);
    } catch (error) {
      if (error instanceof InvalidUpdateError) throw new InvalidUpdateError(error.reason, error.message, i);
      throw error;
    }
  });
  return acc.result(options.expectedClients);
}
