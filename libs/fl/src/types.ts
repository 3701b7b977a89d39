/**
 * Shared types. A model (or an update to it) is a list of layers, each a flat `Float32Array`.
 * Layer shapes beyond the flat length are the model library's concern; aggregation only needs lengths.
 */
export type Weights = Float32Array[];

/** One client's contribution to a round: its weights (or delta) and how many examples it trained on. */
export interface ClientUpdate {
  readonly weights: readonly Float32Array[];
  /** Positive finite number; the FedAvg weight. Unweighted rules ignore it. */
  readonly numExamples: number;
}

/** What an aggregation rule returns: the new weights and, for rules that select clients, their indices. */
export interface AggregateResult {
  weights: Weights;
  /** Indices into the input array of the clients the rule selected (Krum, Multi-Krum, Bulyan). */
  selected?: number[];
}

/**
 * A rule that must see every update of the round at once (median, trimmed mean, Krum, Bulyan, ...):
 * its memory is O(n·d). The type says so with `requiresAllUpdates: true`.
 */
export interface BatchRule {
  readonly name: string;
  readonly requiresAllUpdates: true;
  aggregate(updates: readonly ClientUpdate[]): AggregateResult;
}

/** An accumulator that takes updates one at a time in O(d) memory (FedAvg, plain sums). */
export interface StreamingAccumulator {
  readonly requiresAllUpdates: false;
  /** Adds one update; throws `InvalidUpdateError` (and leaves the state untouched) when the update is bad. */
  add(update: ClientUpdate): void;
  /** Number of updates accepted so far. */
  readonly count: number;
  /** The aggregate of what was accepted so far. */
  result(): AggregateResult;
}

/** Source of uniform numbers in [0, 1). Seeded for tests and bucketing, crypto-backed for DP noise. */
export type UniformSource = () => number;
