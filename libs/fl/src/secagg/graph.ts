/**
 * The SecAgg+ communication graph (Bell, Bonawitz, Gascón, Lepoint, Raykova 2020, "Secure Single-Server
 * Aggregation with (Poly)Logarithmic Overhead", §4 and §7): a Harary graph H(k, n) — position i is joined to the
 * positions i ± 1 … i ± k/2 (mod n) — over a random permutation of the clients drawn from a shared seed, so every
 * client talks to k = O(log n) neighbours and the total cost grows as n log n instead of n². k ≥ n − 1 is the
 * complete graph of the original protocol (Bonawitz et al. 2017).
 */
import { InvalidParameterError } from '../errors.js';
import { permutation } from '../rng.js';
import { cryptoUniform } from './primitives.js';

/** Shamir shares per secret are limited to 255 by GF(2^8) (the share library); a neighbourhood includes the client. */
export const MAX_NEIGHBOURS = 254;

/**
 * Default degree: 2⌈1.5·log₂ n⌉ (≈ 3 log₂ n, even), at most n − 1. Bell et al. prove O(log n) neighbours suffice
 * for correctness and privacy with high probability under a constant fraction of dropouts and corruptions; the
 * constant is ours (n = 100 → 20, n = 1,000 → 30) and a round can set k explicitly.
 */
export function defaultNeighbours(n: number): number {
  if (n <= 1) return 0;
  return Math.min(n - 1, 2 * Math.ceil(1.5 * Math.log2(n)));
}

/** Neighbour lists by client id, each sorted, the client itself excluded. */
export interface NeighbourGraph {
  /** The neighbours of `id`, undefined for an id not in the graph. */
  get(id: string): readonly string[] | undefined;
  /** Every client id, sorted. */
  ids(): readonly string[];
}

/**
 * The graph over `clients` (any order; sorted first, so both sides agree) of degree `k` from `seed`. k must be
 * even or ≥ n − 1 (complete graph), and at most 254.
 */
export function secAggGraph(clients: readonly string[], k: number, seed: Uint8Array): NeighbourGraph {
  const ids = [...clients].sort();
  const n = ids.length;
  for (let i = 1; i < n; i++)
    if (ids[i] === ids[i - 1]) throw new InvalidParameterError(`client ${ids[i]} is listed twice`);
  if (!Number.isInteger(k) || k < 1) throw new InvalidParameterError('neighbours must be a positive integer');
  if (Math.min(k, n - 1) > MAX_NEIGHBOURS)
    throw new InvalidParameterError(`at most ${MAX_NEIGHBOURS} neighbours (Shamir shares over GF(2^8))`);
  const complete = k >= n - 1;
  if (!complete && k % 2 !== 0)
    throw new InvalidParameterError('neighbours must be even (a Harary graph) or n − 1');
  const order = complete ? ids : permutation(n, cryptoUniform(seed)).map((i) => ids[i]!);
  const position = new Map(order.map((id, pos) => [id, pos]));
  // lists are made on first use: a client needs its own only (O(n) for the permutation, not O(n·k))
  const lists = new Map<string, string[]>();
  const half = k / 2;
  return {
    ids: () => ids,
    get(id) {
      const pos = position.get(id);
      if (pos === undefined) return undefined;
      let near = lists.get(id);
      if (!near) {
        if (complete) near = ids.filter((other) => other !== id);
        else {
          near = [];
          for (let j = 1; j <= half; j++) near.push(order[(pos + j) % n]!, order[(pos - j + n) % n]!);
          near.sort();
        }
        lists.set(id, near);
      }
      return near;
    },
  };
}
