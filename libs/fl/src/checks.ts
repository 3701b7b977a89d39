// Internal helpers shared by the single-threaded rules and AggregationPool (not part of the public API).
import { InvalidParameterError, InvalidUpdateError } from './errors.js';
import type { ClientUpdate } from './types.js';
import { assertValidUpdates, type UpdateConstraints } from './validate.js';

/**
 * The common shape after the structural checks (layer count, lengths, example counts); the NaN/Inf check is
 * left to the kernels, which fuse it with their first read. If a structural check fails, the full check runs
 * so that the error is exactly the one `assertValidUpdates` gives (the first bad update in input order).
 */
export function structuralShape(
  updates: readonly ClientUpdate[],
  constraints: UpdateConstraints = {},
): number[] {
  try {
    return assertValidUpdates(updates, { ...constraints, skipFiniteCheck: true });
  } catch (err) {
    assertValidUpdates(updates, constraints);
    throw err;
  }
}

/** Throws the error of the first bad update (a kernel saw a non-finite value). */
export function throwFirstInvalid(updates: readonly ClientUpdate[], constraints: UpdateConstraints): never {
  assertValidUpdates(updates, constraints);
  throw new InvalidUpdateError('non-finite', 'an update contains NaN or Infinity');
}

/** Checks β for the trimmed mean and returns k = floor(β·n), the count cut from each tail. */
export function trimCount(n: number, beta: number): number {
  if (!(typeof beta === 'number' && beta >= 0 && beta < 0.5)) {
    throw new InvalidParameterError(`trimmed mean needs 0 <= beta < 0.5, got ${String(beta)}`);
  }
  const k = Math.floor(beta * n);
  if (2 * k >= n)
    throw new InvalidParameterError(`trimmed mean with beta=${beta} cuts every one of the ${n} updates`);
  return k;
}

/** Layer l of every update, in input order. */
export function layerOf(updates: readonly ClientUpdate[], l: number): Float32Array[] {
  return updates.map((u) => u.weights[l]!);
}
