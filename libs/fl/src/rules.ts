import { InvalidParameterError } from './errors.js';
import { fedAvg, weightedSum } from './fedavg.js';
import { permutation, createSeededUniform } from './rng.js';
import { bulyan, centeredClipping, krum, median, multiKrum, trimmedMean } from './robust.js';
import type { AggregateResult, BatchRule, ClientUpdate, UniformSource } from './types.js';
import { assertValidUpdates } from './validate.js';

export const STRATEGY_NAMES = [
  'fedavg',
  'median',
  'trimmed-mean',
  'krum',
  'multi-krum',
  'bulyan',
  'centered-clipping',
] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface RuleParams {
  /** Byzantine bound for Krum, Multi-Krum, Bulyan. */
  f?: number;
  /** How many clients Multi-Krum keeps. */
  m?: number;
  /** Trim fraction per tail for the trimmed mean. */
  beta?: number;
  /** Clipping radius for centered clipping. */
  tau?: number;
  /** Iterations of centered clipping. */
  iterations?: number;
}

function need(value: number | undefined, name: string, rule: string): number {
  if (value === undefined) throw new InvalidParameterError(`${rule} needs --${name}`);
  return value;
}

/**
 * One of the named aggregation rules as a `BatchRule` (they all see the whole round; use
 * `createFedAvgAccumulator` for streaming FedAvg).
 */
export function createRule(name: StrategyName, params: RuleParams = {}): BatchRule {
  const rule = (aggregate: (u: readonly ClientUpdate[]) => AggregateResult): BatchRule => ({
    name,
    requiresAllUpdates: true,
    aggregate,
  });
  switch (name) {
    case 'fedavg':
      return rule((u) => fedAvg(u));
    case 'median':
      return rule((u) => median(u));
    case 'trimmed-mean':
      return rule((u) => trimmedMean(u, need(params.beta, 'beta', name)));
    case 'krum':
      return rule((u) => krum(u, need(params.f, 'f', name)));
    case 'multi-krum':
      return rule((u) => multiKrum(u, need(params.f, 'f', name), need(params.m, 'm', name)));
    case 'bulyan':
      return rule((u) => bulyan(u, need(params.f, 'f', name)));
    case 'centered-clipping':
      return rule((u) => centeredClipping(u, { tau: params.tau, iterations: params.iterations }));
    default:
      throw new InvalidParameterError(`unknown strategy ${String(name)}`);
  }
}

/**
 * Random buckets of `bucketSize` clients (Karimireddy, He, Jaggi 2022, "Byzantine-Robust Learning on
 * Heterogeneous Datasets via Bucketing"): a permutation drawn from `uniform`, cut into ⌈n/s⌉ groups. The
 * aggregator uses the same assignment to form secure-aggregation groups, so only bucket sums are ever seen.
 */
export function bucketAssignment(n: number, bucketSize: number, uniform: UniformSource): number[][] {
  if (!Number.isInteger(bucketSize) || bucketSize < 1)
    throw new InvalidParameterError('bucket size must be a positive integer');
  const perm = permutation(n, uniform);
  const buckets: number[][] = [];
  for (let i = 0; i < n; i += bucketSize) buckets.push(perm.slice(i, i + bucketSize));
  return buckets;
}

/**
 * Bucketing wrapper (Karimireddy et al. 2022): runs `rule` over the means of random buckets instead of the
 * individual updates. A bucket's example count is the sum of its members'. `selected` (if the inner rule
 * selects) lists the members of the selected buckets, ascending. The seed is explicit: same seed, same buckets.
 */
export function withBucketing(
  rule: BatchRule,
  options: { bucketSize: number; seed: number | string },
): BatchRule {
  return {
    name: `bucketing(${rule.name}, s=${options.bucketSize})`,
    requiresAllUpdates: true,
    aggregate(updates: readonly ClientUpdate[]): AggregateResult {
      const shape = assertValidUpdates(updates, { requireNumExamples: false });
      const buckets = bucketAssignment(updates.length, options.bucketSize, createSeededUniform(options.seed));
      const means: ClientUpdate[] = buckets.map((members) => {
        const subset = members.map((i) => updates[i]!);
        return {
          weights: weightedSum(
            subset,
            subset.map(() => 1),
            shape,
            1 / subset.length,
          ),
          numExamples:
            subset.reduce((a, u) => a + (u.numExamples > 0 ? u.numExamples : 0), 0) || subset.length,
        };
      });
      const inner = rule.aggregate(means);
      if (!inner.selected) return { weights: inner.weights };
      const selected = inner.selected.flatMap((b) => buckets[b]!).sort((a, b) => a - b);
      return { weights: inner.weights, selected };
    },
  };
}
