import {
  CentralDpAccumulator,
  createFedAvgAccumulator,
  createRule,
  decodeUpdate,
  type ClientUpdate,
  type Weights,
} from '@edgefl/fl';
import type { RoundRow, RoundStore } from './round-store.js';

export interface AggregationOutcome {
  /** New global weights: base + aggregated delta. */
  weights: Weights;
  /** Cosine of each accepted update (by seq) to the running aggregate of the updates before it. */
  cosines: Map<number, number>;
  participants: string[];
  /** Devices a selecting rule (Krum, Multi-Krum, Bulyan) kept; all participants otherwise. */
  selected: string[];
}

/** Opens a stored sealed payload again (the round key is kept until the result is published). */
export type OpenPayload = (row: { deviceId: string }, payload: Uint8Array) => Promise<Uint8Array>;

export class TooManyHeldUpdatesError extends Error {}

/**
 * Aggregates a closed round's accepted updates in acceptance order (so a re-run after a crash gives the same
 * bytes): FedAvg streams in O(d) (libs/fl's accumulator, float64 sums); central DP clips and noises the sum
 * (libs/fl's CentralDpAccumulator); rules that need every update hold them, up to `maxHeld`.
 */
export async function aggregateRound(
  round: RoundRow,
  store: RoundStore,
  base: readonly Float32Array[],
  openPayload: OpenPayload,
  maxHeld: number,
  /** Called after each update is added (the crash tests' kill point). */
  onProgress: (added: number, total: number) => void = () => undefined,
): Promise<AggregationOutcome> {
  const { settings, shape } = round;
  const cosines = new Map<number, number>();
  const participants: string[] = [];
  const running = shape.map((n) => new Float64Array(n));
  const streaming = settings.strategy === 'fedavg';
  const fedavg =
    settings.dp.mode === 'central'
      ? new CentralDpAccumulator(
          { clipNorm: settings.dp.clipNorm, noiseMultiplier: settings.dp.noiseMultiplier },
          { shape },
        )
      : createFedAvgAccumulator({ shape });
  const held: ClientUpdate[] = [];
  const total = store.counts(round.roundId).accepted;
  for (const { row, payload } of store.acceptedPayloads(round.roundId)) {
    const weights = decodeUpdate(await openPayload(row, payload)).weights;
    cosines.set(row.seq, cosineAndAdd(running, weights));
    participants.push(row.deviceId);
    const update = { weights, numExamples: row.numExamples };
    if (streaming) fedavg.add(update);
    else {
      if (held.length >= maxHeld)
        throw new TooManyHeldUpdatesError(`${settings.strategy} would hold more than ${maxHeld} updates`);
      held.push(update);
    }
    onProgress(participants.length, total);
  }
  let delta: Weights;
  let selected = participants;
  if (streaming) delta = fedavg.result().weights;
  else {
    const out = createRule(settings.strategy, settings.ruleParams).aggregate(held);
    delta = out.weights;
    if (out.selected) selected = out.selected.map((i) => participants[i]!);
  }
  const weights = base.map((b, l) => {
    const out = new Float32Array(b.length);
    const d = delta[l]!;
    for (let j = 0; j < b.length; j++) out[j] = b[j]! + d[j]!;
    return out;
  });
  return { weights, cosines, participants, selected };
}

/** cos(u, S) where S is the running sum so far (NaN for the first update), then S += u. O(d). */
function cosineAndAdd(sum: Float64Array[], u: readonly Float32Array[]): number {
  let dot = 0;
  let nu = 0;
  let ns = 0;
  for (let l = 0; l < sum.length; l++) {
    const s = sum[l]!;
    const x = u[l]!;
    for (let j = 0; j < s.length; j++) {
      const a = x[j]!;
      dot += a * s[j]!;
      nu += a * a;
      ns += s[j]! * s[j]!;
      s[j]! += a;
    }
  }
  return ns === 0 || nu === 0 ? Number.NaN : dot / Math.sqrt(nu * ns);
}

/** Robust z-score of each norm: (x − median) / (1.4826 · MAD) (Hampel 1974; 1.4826 makes MAD estimate σ). */
export function robustZ(norms: readonly number[]): number[] {
  if (norms.length === 0) return [];
  const med = medianOf(norms);
  const mad = medianOf(norms.map((x) => Math.abs(x - med))) * 1.4826;
  return norms.map((x) => (mad > 0 ? (x - med) / mad : x === med ? 0 : Number.POSITIVE_INFINITY));
}

function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
