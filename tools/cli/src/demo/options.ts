import { existsSync, statSync } from 'node:fs';
import { STRATEGY_NAMES } from '@edgefl/fl';
import { ATTACK_KINDS, BUILTIN_DATASETS, type AttackKind } from '@edgefl/sim';
import { UsageError } from '../usage-error.js';

/** Built-in data sets: `shared/datasets` (see its README) and libs/sim's synthetic card-payment fraud. */
export const DEMO_DATASETS = BUILTIN_DATASETS;

/** Robust aggregation rules the aggregator runs (libs/fl), with the parameters the demo gives them. */
export const ROBUST_RULES = STRATEGY_NAMES.filter((name) => name !== 'fedavg');

/** What the attackers can do (libs/sim's attack models). */
export const DEMO_ATTACKS = ATTACK_KINDS;

/** What `edgefl demo` runs, after every flag was checked. */
export interface DemoOptions {
  devices: number;
  rounds: number;
  /** A built-in name, or the path of a CSV file. */
  dataset: string;
  datasetPath: string | null;
  label: string | null;
  attackers: number; // fraction in [0, 1)
  attack: AttackKind | null;
  robust: string | null;
  /** Updates whose L2 norm exceeds this are rejected by the aggregator (norm bounding by rejection). */
  maxNorm: number | null;
  secureAggregation: boolean;
  dpEpsilon: number | null;
  dpDelta: number;
  dirichletAlpha: number;
  seed: number;
  json: string | null;
  /** The HTML report (tools/cli/src/report) of the run's summary. */
  report: string | null;
  dataDir: string | null;
  localEpochs: number;
  learningRate: number;
  batchSize: number;
}

/** The flags as commander hands them over (strings, booleans for switches). */
export interface DemoFlags {
  devices?: string;
  rounds?: string;
  dataset?: string;
  label?: string;
  attackers?: string;
  attack?: string;
  robust?: string;
  maxNorm?: string;
  secureAggregation?: boolean;
  dpEpsilon?: string;
  dpDelta?: string;
  alpha?: string;
  seed?: string;
  json?: string;
  report?: string;
  dataDir?: string;
  epochs?: string;
  lr?: string;
  batchSize?: string;
}

/** The defaults of `npm start`: digits, a fleet and rounds that finish within 3 minutes on a loaded 2-core machine. */
export const DEMO_DEFAULTS = {
  devices: 50,
  rounds: 10,
  dataset: 'digits',
  seed: 42,
  dirichletAlpha: 0.5,
  dpDelta: 1e-5,
  localEpochs: 5,
  learningRate: 0.1,
  batchSize: 16,
} as const;

function number(value: string, flag: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${flag} must be a number, got '${value}'`);
  return n;
}

function integer(
  value: string | undefined,
  flag: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const n = number(value, flag);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new UsageError(`--${flag} must be an integer from ${min} to ${max}, got '${value}'`);
  return n;
}

/**
 * Checks every flag and their combinations before anything boots: each refusal is a UsageError (one line, exit 2).
 * The data set itself (its label column, its numbers) is checked when it is loaded, also before the boot.
 */
export function parseDemoOptions(flags: DemoFlags): DemoOptions {
  const devices = integer(flags.devices, 'devices', DEMO_DEFAULTS.devices, 1, 10_000);
  const rounds = integer(flags.rounds, 'rounds', DEMO_DEFAULTS.rounds, 1, 1_000);
  const seed = integer(flags.seed, 'seed', DEMO_DEFAULTS.seed, 0, 2 ** 31 - 1);
  const dataset = flags.dataset ?? DEMO_DEFAULTS.dataset;
  let datasetPath: string | null = null;
  if (!(DEMO_DATASETS as readonly string[]).includes(dataset)) {
    if (!/\.(csv|csv\.gz)$/i.test(dataset))
      throw new UsageError(
        `unknown data set '${dataset}': one of ${DEMO_DATASETS.join(', ')}, or the path of a .csv file`,
      );
    if (!existsSync(dataset) || !statSync(dataset).isFile())
      throw new UsageError(`--dataset ${dataset}: no such file`);
    datasetPath = dataset;
  }
  const label = flags.label ?? null;
  if (label !== null && label.trim() === '') throw new UsageError('--label must name a column');
  if (datasetPath !== null && label === null)
    throw new UsageError(`--dataset ${dataset} is a CSV file: name its label column with --label`);
  if (datasetPath === null && label !== null)
    throw new UsageError(`--label is for a CSV file; the built-in data set ${dataset} has its label`);

  const attackers = flags.attackers === undefined ? 0 : number(flags.attackers, 'attackers');
  if (!(attackers >= 0 && attackers < 1))
    throw new UsageError(
      `--attackers is the fraction of devices that attack, in [0, 1), got '${flags.attackers}'`,
    );
  if (Math.round(attackers * devices) >= devices)
    throw new UsageError(`--attackers ${attackers} of ${devices} devices leaves no honest device`);
  let attack: AttackKind | null = null;
  if (flags.attack !== undefined) {
    if (!(DEMO_ATTACKS as readonly string[]).includes(flags.attack))
      throw new UsageError(`unknown --attack '${flags.attack}': one of ${DEMO_ATTACKS.join(', ')}`);
    attack = flags.attack as AttackKind;
  }
  if (attackers > 0 && attack === null)
    throw new UsageError(`--attackers ${attackers} needs --attack <${DEMO_ATTACKS.join('|')}>`);
  if (attack !== null && attackers === 0)
    throw new UsageError(`--attack ${attack} needs --attackers FRACTION (the share of devices that attack)`);
  if (attackers > 0 && Math.round(attackers * devices) === 0)
    throw new UsageError(`--attackers ${attackers} of ${devices} devices is no attacker at all`);

  const robust = flags.robust ?? null;
  if (robust !== null && !(ROBUST_RULES as readonly string[]).includes(robust))
    throw new UsageError(`unknown --robust rule '${robust}': one of ${ROBUST_RULES.join(', ')}`);

  const secureAggregation = flags.secureAggregation === true;
  if (secureAggregation && devices < 2) throw new UsageError('--secure-aggregation needs at least 2 devices');
  let maxNorm: number | null = null;
  if (flags.maxNorm !== undefined) {
    maxNorm = number(flags.maxNorm, 'max-norm');
    if (!(maxNorm > 0)) throw new UsageError(`--max-norm must be positive, got '${flags.maxNorm}'`);
    if (secureAggregation)
      throw new UsageError(
        '--max-norm with --secure-aggregation: masked updates cannot be norm-checked (secure aggregation bounds every coordinate instead)',
      );
  }

  let dpEpsilon: number | null = null;
  if (flags.dpEpsilon !== undefined) {
    dpEpsilon = number(flags.dpEpsilon, 'dp-epsilon');
    if (!(dpEpsilon > 0)) throw new UsageError(`--dp-epsilon must be positive, got '${flags.dpEpsilon}'`);
    if (robust !== null)
      throw new UsageError(
        `--dp-epsilon with --robust ${robust}: central DP noises the FedAvg sum, a robust rule breaks its sensitivity`,
      );
    if (secureAggregation)
      throw new UsageError(
        '--dp-epsilon with --secure-aggregation: the demo runs central DP on sealed rounds only (not tried on masked ones)',
      );
  }
  const dpDelta = flags.dpDelta === undefined ? DEMO_DEFAULTS.dpDelta : number(flags.dpDelta, 'dp-delta');
  if (!(dpDelta > 0 && dpDelta < 1))
    throw new UsageError(`--dp-delta must be in (0, 1), got '${flags.dpDelta}'`);

  const dirichletAlpha =
    flags.alpha === undefined ? DEMO_DEFAULTS.dirichletAlpha : number(flags.alpha, 'alpha');
  if (!(dirichletAlpha > 0)) throw new UsageError(`--alpha must be positive, got '${flags.alpha}'`);
  const learningRate = flags.lr === undefined ? DEMO_DEFAULTS.learningRate : number(flags.lr, 'lr');
  if (!(learningRate > 0)) throw new UsageError(`--lr must be positive, got '${flags.lr}'`);
  for (const [flag, path] of [
    ['json', flags.json],
    ['report', flags.report],
    ['data-dir', flags.dataDir],
  ] as const)
    if (path !== undefined && path.trim() === '') throw new UsageError(`--${flag} must not be empty`);

  return {
    devices,
    rounds,
    dataset,
    datasetPath,
    label,
    attackers,
    attack,
    robust,
    maxNorm,
    secureAggregation,
    dpEpsilon,
    dpDelta,
    dirichletAlpha,
    seed,
    json: flags.json ?? null,
    report: flags.report ?? null,
    dataDir: flags.dataDir ?? null,
    localEpochs: integer(flags.epochs, 'epochs', DEMO_DEFAULTS.localEpochs, 1, 100),
    learningRate,
    batchSize: integer(flags.batchSize, 'batch-size', DEMO_DEFAULTS.batchSize, 1, 4096),
  };
}
