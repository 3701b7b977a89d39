import { STRATEGY_NAMES, type RuleParams, type StrategyName } from '@edgefl/fl';
import { BadRequestError, Id } from '@edgefl/service-kit';
import { z } from 'zod';

/** Privacy of the updates: sealed to the round's HPKE key, or masked by secure aggregation (issue 14). */
export const PRIVACY_MODES = ['sealed', 'secure-aggregation'] as const;
export type PrivacyMode = (typeof PRIVACY_MODES)[number];

const id = z.string().min(1).max(128);

/** The body of POST /v1/rounds. Times are epoch milliseconds. */
export const StartRoundRequest = z.strictObject({
  roundId: Id.optional(),
  tenant: Id,
  modelId: Id,
  baseVersion: z.int().min(1),
  selectedDevices: z.array(id).min(1).max(100_000),
  /** Accepted updates needed: a count (≥ 1) or a fraction of the selection (0 < q < 1). */
  quorum: z.number().positive(),
  graceMs: z.int().min(0).default(0),
  deadline: z.int().positive(),
  training: z
    .strictObject({
      localEpochs: z.int().min(1).max(1000).default(1),
      batchSize: z.int().min(1).max(1_000_000).default(32),
      learningRate: z.number().positive().finite().default(0.01),
      proximalMu: z.number().min(0).finite().default(0),
    })
    .prefault({}),
  strategy: z.string().min(1).default('fedavg'),
  strategyParams: z.record(z.string(), z.number().finite()).default({}),
  dp: z
    .strictObject({
      mode: z.enum(['none', 'central', 'local']).default('none'),
      clipNorm: z.number().positive().finite().optional(),
      noiseMultiplier: z.number().min(0).finite().default(0),
      delta: z.number().gt(0).lt(1).optional(),
      /** Poisson sampling rate of clients in the round, for the accountant (default 1). */
      samplingRate: z.number().gt(0).max(1).default(1),
    })
    .prefault({}),
  privacyMode: z.enum(PRIVACY_MODES).default('sealed'),
  /** Secure aggregation (privacyMode `secure-aggregation`): the protocol's parameters, all optional. */
  secureAggregation: z
    .strictObject({
      /** Shamir threshold: an integer t ≥ 2 of each neighbourhood, or a fraction of it in (0, 1). */
      threshold: z
        .number()
        .positive()
        .default(2 / 3),
      /** Degree k of the SecAgg+ graph (default O(log n)); n − 1 or more is the complete graph of SecAgg. */
      neighbours: z.int().min(1).optional(),
      /** Every coordinate of an update lies in [-bound, bound] (default dp.clipNorm, else 1). */
      bound: z.number().positive().finite().optional(),
      /** Fractional bits of the fixed-point encoding (default: the most that fit in 32-bit lanes, ≥ 16). */
      precisionBits: z.int().min(16).max(52).optional(),
      /** Each phase ends when every device still in it answered, or after this long. */
      phaseTimeoutMs: z.int().min(100).max(3_600_000).default(30_000),
      /** Bucketed robust mode: devices per bucket (default 10 with a robust strategy, no buckets with fedavg). */
      bucketSize: z.int().min(2).max(100_000).optional(),
    })
    .optional(),
  /** Updates whose L2 norm exceeds this are rejected (norm bounding by rejection). */
  maxNorm: z.number().positive().finite().optional(),
  /** Robust z-score of the update norm above which an update is reported as an outlier. */
  outlierZ: z.number().positive().finite().default(3),
});
export type StartRoundRequest = z.output<typeof StartRoundRequest>;

/** A round request the settings make impossible (400), with a stable `code` member in the problem. */
export const impossible = (code: string, message: string) => new BadRequestError(message, { code });

/** What a round is opened with, after validation (stored as JSON with the round). */
export interface RoundSettings {
  baseVersion: number;
  selectedDevices: string[];
  quorum: number;
  graceMs: number;
  deadline: number;
  training: { localEpochs: number; batchSize: number; learningRate: number; proximalMu: number };
  strategy: StrategyName;
  strategyParams: Record<string, number>;
  ruleParams: RuleParams;
  dp: {
    mode: 'none' | 'central' | 'local';
    clipNorm: number;
    noiseMultiplier: number;
    delta: number;
    samplingRate: number;
  };
  privacyMode: PrivacyMode;
  /** Set for secure-aggregation rounds only. */
  secureAggregation?: SecureAggregationSettings | null;
  maxNorm: number | undefined;
  outlierZ: number;
}

export interface SecureAggregationSettings {
  threshold: number;
  neighbours: number | null;
  bound: number;
  precisionBits: number | null;
  phaseTimeoutMs: number;
  /** null: one protocol instance over every selected device. */
  bucketSize: number | null;
}

/** Default bucket size of the bucketed robust mode (one protocol instance per bucket). */
export const DEFAULT_BUCKET_SIZE = 10;

const isStrategy = (name: string): name is StrategyName =>
  (STRATEGY_NAMES as readonly string[]).includes(name);

/** Parameters each robust rule needs (libs/fl's createRule refuses to run without them). */
const NEEDED: Partial<Record<StrategyName, Array<keyof RuleParams>>> = {
  'trimmed-mean': ['beta'],
  krum: ['f'],
  'multi-krum': ['f', 'm'],
  bulyan: ['f'],
};

/** Checks what the schema cannot: the quorum against the selection, the deadline against now, the strategy. */
export function toRoundSettings(req: StartRoundRequest, now: number, defaultDelta: number): RoundSettings {
  const selected = [...new Set(req.selectedDevices)];
  if (selected.length !== req.selectedDevices.length)
    throw impossible('duplicate-devices', 'selectedDevices has duplicates');
  const quorum = req.quorum < 1 ? Math.ceil(req.quorum * selected.length) : req.quorum;
  if (!Number.isInteger(quorum))
    throw impossible('bad-quorum', 'quorum must be an integer count or a fraction below 1');
  if (quorum > selected.length)
    throw impossible(
      'quorum-above-selection',
      `quorum ${quorum} is above the ${selected.length} selected devices`,
    );
  if (req.deadline <= now)
    throw impossible('deadline-in-past', `deadline ${new Date(req.deadline).toISOString()} has passed`);
  if (!isStrategy(req.strategy))
    throw impossible(
      'unknown-strategy',
      `unknown strategy ${req.strategy}; one of ${STRATEGY_NAMES.join(', ')}`,
    );
  const p = req.strategyParams;
  const ruleParams: RuleParams = {};
  for (const k of ['f', 'm', 'beta', 'tau', 'iterations'] as const)
    if (p[k] !== undefined) ruleParams[k] = p[k];
  for (const k of NEEDED[req.strategy] ?? [])
    if (ruleParams[k] === undefined)
      throw impossible('missing-strategy-param', `${req.strategy} needs strategyParams.${k}`);
  const dp = req.dp;
  if (dp.mode !== 'none' && dp.clipNorm === undefined)
    throw impossible('dp-needs-clip-norm', `dp.mode ${dp.mode} needs dp.clipNorm`);
  if (dp.mode !== 'none' && !(dp.noiseMultiplier > 0))
    throw impossible('dp-needs-noise', `dp.mode ${dp.mode} needs dp.noiseMultiplier > 0`);
  if (dp.mode === 'central' && req.strategy !== 'fedavg')
    throw impossible(
      'central-dp-needs-fedavg',
      'central DP noises the FedAvg sum; robust rules would break its sensitivity',
    );
  let secureAggregation: SecureAggregationSettings | null = null;
  if (req.privacyMode === 'secure-aggregation') {
    if (req.maxNorm !== undefined)
      throw impossible(
        'secure-aggregation-max-norm',
        'maxNorm cannot be checked on masked updates; secure aggregation bounds every coordinate instead (secureAggregation.bound)',
      );
    if (selected.length < 2)
      throw impossible('secure-aggregation-too-few', 'secure aggregation needs at least 2 selected devices');
    const sa = req.secureAggregation ?? { threshold: 2 / 3, phaseTimeoutMs: 30_000 };
    const robust = req.strategy !== 'fedavg';
    secureAggregation = {
      threshold: sa.threshold,
      neighbours: sa.neighbours ?? null,
      bound: sa.bound ?? (dp.mode !== 'none' && dp.clipNorm !== undefined ? dp.clipNorm : 1),
      precisionBits: sa.precisionBits ?? null,
      phaseTimeoutMs: sa.phaseTimeoutMs,
      bucketSize: sa.bucketSize ?? (robust ? DEFAULT_BUCKET_SIZE : null),
    };
  } else if (req.secureAggregation !== undefined)
    throw impossible(
      'secure-aggregation-settings-without-mode',
      'secureAggregation settings need privacyMode secure-aggregation',
    );
  return {
    baseVersion: req.baseVersion,
    selectedDevices: selected,
    quorum,
    graceMs: req.graceMs,
    deadline: req.deadline,
    training: req.training,
    strategy: req.strategy,
    strategyParams: { ...p, ...(req.training.proximalMu > 0 ? { proximalMu: req.training.proximalMu } : {}) },
    ruleParams,
    dp: {
      mode: dp.mode,
      clipNorm: dp.clipNorm ?? 0,
      noiseMultiplier: dp.mode === 'none' ? 0 : dp.noiseMultiplier,
      delta: dp.delta ?? defaultDelta,
      samplingRate: dp.samplingRate,
    },
    privacyMode: req.privacyMode,
    secureAggregation,
    maxNorm: req.maxNorm,
    outlierZ: req.outlierZ,
  };
}
