/**
 * Bucketed robust mode: Byzantine robustness without the server seeing an individual update. Clients are split
 * into random buckets from a seed both sides derive (Karimireddy, He, Jaggi 2022, "Byzantine-Robust Learning on
 * Heterogeneous Datasets via Bucketing"); secure aggregation runs inside each bucket (one protocol instance per
 * bucket, `bucket` in every message); a robust rule of libs/fl runs over the bucket means.
 */
import { InvalidParameterError } from '../errors.js';
import { bucketAssignment } from '../rules.js';
import type { AggregateResult, BatchRule, ClientUpdate } from '../types.js';
import { cryptoUniform } from './primitives.js';
import type { SecAggResult } from './server.js';

/** The buckets (sorted device ids each) of `clients` for `seed` (≥ 16 bytes): the same on every side. */
export function secAggBuckets(clients: readonly string[], bucketSize: number, seed: Uint8Array): string[][] {
  const ids = [...clients].sort();
  return bucketAssignment(ids.length, bucketSize, cryptoUniform(seed)).map((members) =>
    members.map((i) => ids[i]!).sort(),
  );
}

/**
 * Runs `rule` (e.g. `createRule('median')`) over the means of the buckets that completed. A bucket weighs as many
 * examples as it has survivors. Selections (Krum, …) are bucket indices into `results`.
 */
export function robustOverBuckets(results: readonly SecAggResult[], rule: BatchRule): AggregateResult {
  if (results.length === 0) throw new InvalidParameterError('no bucket completed');
  const means: ClientUpdate[] = results.map((r) => ({
    weights: r.mean.map((layer) => Float32Array.from(layer)),
    numExamples: r.survivors.length,
  }));
  return rule.aggregate(means);
}
