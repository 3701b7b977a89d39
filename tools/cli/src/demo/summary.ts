/**
 * The demo's JSON summary (`npx edgefl demo --json out.json`): every figure the HTML report shows, and nothing the
 * report computes on its own. Format name and version travel in the file so a reader can refuse another format.
 */
export const DEMO_SUMMARY_FORMAT = 'edgefl.demo.summary/v1';

export interface DemoSummary {
  readonly format: typeof DEMO_SUMMARY_FORMAT;
  readonly startedAt: string; // ISO 8601
  readonly finishedAt: string;
  readonly wallSeconds: number;
  readonly settings: DemoSettings;
  /** Centralized training on the same training split, evaluated on the same held-out test split. */
  readonly baseline: { readonly accuracy: number; readonly rocAuc: number | null };
  readonly rounds: readonly RoundFigures[];
  /** Every update the aggregator refused, with its reason (and whether the device was one of the attackers). */
  readonly rejectedUpdates: readonly RejectedUpdate[];
  readonly releases: readonly ReleaseFigures[];
  readonly ota: OtaFigures;
  /** Inference latency on the device (edge) and for escalations answered by the cloud tier. */
  readonly latency: { readonly edge: Histogram; readonly cloud: Histogram };
  /** Model version → number of devices on it at the end. */
  readonly fleetVersionMix: Readonly<Record<string, number>>;
}

export interface RejectedUpdate {
  readonly round: number;
  readonly deviceId: string;
  readonly reason: string;
  readonly detail?: string | null;
  readonly attacker?: boolean;
}

/** How the run defended itself (summary format v1 readers before this field ignore it). */
export interface DefenceSettings {
  /** The aggregation rule: `fedavg` or a robust rule of libs/fl. */
  readonly rule: string;
  readonly params: Readonly<Record<string, number>>;
  /** Norm bounding by rejection (the aggregator's maxNorm); null = none. */
  readonly maxNorm: number | null;
  /** Robust z-score of the update norm above which the aggregator flags an update as an outlier. */
  readonly outlierZ: number;
  /** Devices per secure-aggregation bucket (robust rules over bucket sums); null without buckets. */
  readonly bucketSize: number | null;
}

export interface DemoSettings {
  readonly devices: number;
  readonly rounds: number;
  readonly dataset: string;
  readonly label: string | null;
  readonly task: 'binary' | 'multiclass';
  readonly attackers: number; // fraction in [0, 1)
  readonly attack: string | null;
  /** The attacking devices' ids (chosen by the seed). */
  readonly attackerIds?: readonly string[];
  readonly robust: string | null; // aggregation rule; null = FedAvg
  readonly defence?: DefenceSettings;
  readonly secureAggregation: boolean;
  readonly dpEpsilon: number | null;
  readonly dpDelta: number | null;
  readonly dirichletAlpha: number;
  readonly seed: number;
}

export interface RoundFigures {
  readonly round: number; // 1-based
  readonly roundId: string;
  readonly participants: number; // updates aggregated
  readonly rejected: number;
  readonly accuracy: number; // global model on the held-out test split
  readonly rocAuc: number | null; // binary tasks only
  /** The centralized baseline after as many passes over the training split (round × local epochs). */
  readonly baseline?: { readonly accuracy: number; readonly rocAuc: number | null };
  /** Accepted updates the aggregator flagged as norm outliers (robust z-score above outlierZ). */
  readonly outliers?: number;
  readonly epsilonSpent: number | null; // cumulative
  readonly wallSeconds: number;
  /** The registry version the round's result became. */
  readonly version: number | null;
  readonly bytesPerDevice: { readonly up: number; readonly down: number };
}

export interface ReleaseFigures {
  readonly version: number;
  readonly outcome: 'completed' | 'halted' | 'rolled-back' | 'in-progress';
  readonly stages: readonly {
    readonly stage: number;
    readonly percent: number;
    readonly enteredAt: string;
    readonly devicesActive: number;
  }[];
}

export interface OtaFigures {
  readonly deltaDownloads: number;
  readonly fullDownloads: number;
  readonly deltaBytes: number;
  readonly fullBytes: number;
  /** What the same installs would have cost as full downloads. */
  readonly fullEquivalentBytes: number;
}

/** Fixed-bucket latency histogram in milliseconds: counts[i] counts values in [bounds[i-1], bounds[i]). */
export interface Histogram {
  readonly boundsMs: readonly number[];
  readonly counts: readonly number[];
  readonly p50: number | null;
  readonly p99: number | null;
}
