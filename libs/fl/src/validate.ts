import { InvalidUpdateError, type RejectionReason } from './errors.js';
import type { ClientUpdate } from './types.js';

/** Expected structure of every update in a round. */
export interface UpdateConstraints {
  /** Expected flat length of each layer. Defaults to the shape of the first update. */
  shape?: readonly number[];
  /** Updates whose L2 norm (all layers together) exceeds this are refused (norm bounding by rejection). */
  maxNorm?: number;
  /** Require `numExamples` to be a positive finite number (true for weighted rules). Default true. */
  requireNumExamples?: boolean;
}

export interface Rejection {
  index: number;
  reason: RejectionReason;
  message: string;
}

/** Flat lengths of the layers. */
export function shapeOf(weights: readonly Float32Array[]): number[] {
  return weights.map((layer) => layer.length);
}

/** Total number of parameters. */
export function sizeOf(shape: readonly number[]): number {
  let d = 0;
  for (const n of shape) d += n;
  return d;
}

/** True when no element is NaN or ±Infinity. */
export function allFinite(layer: Float32Array): boolean {
  for (let i = 0; i < layer.length; i++) {
    const x = layer[i]!;
    if (x - x !== 0) return false; // NaN - NaN and Inf - Inf are NaN
  }
  return true;
}

/** L2 norm over all layers, accumulated in float64. */
export function l2Norm(weights: readonly Float32Array[]): number {
  let s = 0;
  for (const layer of weights) {
    for (let i = 0; i < layer.length; i++) {
      const x = layer[i]!;
      s += x * x;
    }
  }
  return Math.sqrt(s);
}

/** The first reason to refuse `update`, or null when it is acceptable. */
export function checkUpdate(
  update: ClientUpdate,
  shape: readonly number[] | undefined,
  constraints: UpdateConstraints = {},
  checkFinite = true,
): { reason: RejectionReason; message: string } | null {
  if (update === null || typeof update !== 'object' || !Array.isArray(update.weights)) {
    return { reason: 'empty', message: 'no weights' };
  }
  const { weights } = update;
  if (weights.length === 0) return { reason: 'empty', message: 'no layers' };
  if (constraints.requireNumExamples !== false) {
    const n = update.numExamples;
    if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) {
      return {
        reason: 'bad-num-examples',
        message: `num_examples must be a positive finite number, got ${String(n)}`,
      };
    }
  }
  if (shape !== undefined && weights.length !== shape.length) {
    return { reason: 'layer-count', message: `expected ${shape.length} layers, got ${weights.length}` };
  }
  for (let l = 0; l < weights.length; l++) {
    const layer = weights[l];
    if (!(layer instanceof Float32Array))
      return { reason: 'layer-length', message: `layer ${l} is not a Float32Array` };
    if (shape !== undefined && layer.length !== shape[l]) {
      return {
        reason: 'layer-length',
        message: `layer ${l}: expected ${shape[l]} values, got ${layer.length}`,
      };
    }
    if (checkFinite && !allFinite(layer))
      return { reason: 'non-finite', message: `layer ${l} contains NaN or Infinity` };
  }
  if (constraints.maxNorm !== undefined) {
    const norm = l2Norm(weights);
    if (norm > constraints.maxNorm) {
      return {
        reason: 'norm-exceeded',
        message: `L2 norm ${norm.toPrecision(6)} exceeds the bound ${constraints.maxNorm}`,
      };
    }
  }
  return null;
}

/**
 * Splits updates into the acceptable ones and typed rejections (wrong shapes, NaN/Inf, norm beyond the bound,
 * bad example counts). Run it before any rule: a rejected update is never aggregated.
 */
export function screenUpdates(
  updates: readonly ClientUpdate[],
  constraints: UpdateConstraints = {},
): { accepted: ClientUpdate[]; acceptedIndices: number[]; rejected: Rejection[] } {
  const shape = constraints.shape ?? (updates.length > 0 ? referenceShape(updates) : undefined);
  const accepted: ClientUpdate[] = [];
  const acceptedIndices: number[] = [];
  const rejected: Rejection[] = [];
  updates.forEach((update, index) => {
    const bad = checkUpdate(update, shape, constraints);
    if (bad) rejected.push({ index, ...bad });
    else {
      accepted.push(update);
      acceptedIndices.push(index);
    }
  });
  return { accepted, acceptedIndices, rejected };
}

/** The most common shape among the updates (so one malformed first update cannot define the round). */
function referenceShape(updates: readonly ClientUpdate[]): number[] | undefined {
  const counts = new Map<string, { shape: number[]; n: number }>();
  for (const u of updates) {
    if (!u || !Array.isArray(u.weights)) continue;
    const shape = u.weights.map((l) => (l instanceof Float32Array ? l.length : -1));
    const key = shape.join(',');
    const entry = counts.get(key) ?? { shape, n: 0 };
    entry.n++;
    counts.set(key, entry);
  }
  let best: { shape: number[]; n: number } | undefined;
  for (const e of counts.values()) if (!best || e.n > best.n) best = e;
  return best?.shape;
}

/**
 * Throws `InvalidUpdateError` for the first bad update; used at the top of every batch rule so that a NaN
 * update can never be selected or averaged even when the caller skipped `screenUpdates`.
 * Returns the common shape.
 */
export function assertValidUpdates(
  updates: readonly ClientUpdate[],
  constraints: UpdateConstraints & { skipFiniteCheck?: boolean } = {},
): number[] {
  if (!Array.isArray(updates) || updates.length === 0)
    throw new InvalidUpdateError('empty', 'no updates to aggregate');
  const first = updates[0]!;
  if (!first || !Array.isArray(first.weights)) throw new InvalidUpdateError('empty', 'no weights', 0);
  const shape = constraints.shape ? [...constraints.shape] : first.weights.map((l: Float32Array) => l.length);
  for (let i = 0; i < updates.length; i++) {
    const bad = checkUpdate(updates[i]!, shape, constraints, !constraints.skipFiniteCheck);
    if (bad) throw new InvalidUpdateError(bad.reason, bad.message, i);
  }
  return shape;
}
