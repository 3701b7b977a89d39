import { writeFileSync } from 'node:fs';
import {
  InvalidParameterError,
  runSecAggInProcess,
  SECAGG_PHASE_NAMES,
  seededRandomBytes,
  type SecAggPhase,
} from '@edgefl/fl';
import type { Command } from 'commander';
import { RoundAbortedError, UsageError } from '../usage-error.js';
import { parseNumber, readClients } from './fl.js';
import { secAggWireBytes } from '@edgefl/contracts/edge';

export interface SecAggRunOptions {
  in: string;
  out: string;
  threshold: number;
  bound?: number;
  neighbours?: number;
  /** `PHASE:ID,ID` specs. */
  drop?: string[];
  seed?: string;
}

export interface SecAggRunOutput {
  sum: number[][];
  mean: number[][];
  survivors: Array<string | number>;
  precisionBits: number;
  bytesPerClient: Record<string, number>;
}

function parseDrops(
  specs: readonly string[],
  known: ReadonlySet<string>,
): Partial<Record<SecAggPhase, string[]>> {
  const drops: Partial<Record<SecAggPhase, string[]>> = {};
  for (const spec of specs) {
    const at = spec.indexOf(':');
    const phase = SECAGG_PHASE_NAMES[spec.slice(0, Math.max(0, at))];
    if (!phase)
      throw new UsageError(
        `--drop ${spec}: expected PHASE:ID,ID with PHASE one of ${Object.keys(SECAGG_PHASE_NAMES).join(', ')}`,
      );
    const ids = spec
      .slice(at + 1)
      .split(',')
      .filter((id) => id !== '');
    for (const id of ids) if (!known.has(id)) throw new UsageError(`--drop ${spec}: no client has id ${id}`);
    drops[phase] = [...(drops[phase] ?? []), ...ids];
  }
  return drops;
}

/**
 * Runs a whole secure-aggregation round over updates.json in this process (every client and the server, the real
 * state machines) and writes result.json. Bad input → UsageError (exit 2); a round aborted below its threshold →
 * RoundAbortedError (exit 3).
 */
export async function runSecAggFile(options: SecAggRunOptions): Promise<SecAggRunOutput> {
  const { ids, updates } = readClients(options.in);
  const bound = options.bound ?? 1;
  if (!Number.isFinite(bound) || bound <= 0) throw new UsageError('--bound must be a positive number');
  const shape = updates[0]!.weights.map((l) => l.length);
  updates.forEach((u, i) => {
    if (u.weights.length !== shape.length || u.weights.some((l, j) => l.length !== shape[j]))
      throw new UsageError(`${options.in}: client ${i} has layers of other lengths than client 0`);
    u.weights.forEach((l, j) => {
      const bad = l.findIndex((v) => !(v >= -bound && v <= bound));
      if (bad >= 0)
        throw new UsageError(
          `${options.in}: client ${i} layer ${j} [${bad}] = ${l[bad]} is outside [-${bound}, ${bound}]`,
        );
    });
  });
  const names = ids.map(String);
  const drops = parseDrops(options.drop ?? [], new Set(names));
  let round;
  try {
    round = await runSecAggInProcess({
      tenant: 'cli',
      roundId: 'secagg-run',
      clients: names.map((id, i) => ({ id, weights: updates[i]!.weights })),
      threshold: options.threshold,
      bound,
      neighbours: options.neighbours,
      drops,
      random: options.seed === undefined ? undefined : seededRandomBytes(options.seed),
      messageBytes: secAggWireBytes,
    });
  } catch (error) {
    if (error instanceof InvalidParameterError) throw new UsageError(error.message);
    throw error;
  }
  if (round.abort || !round.result)
    throw new RoundAbortedError(`round aborted in ${round.abort?.phase}: ${round.abort?.message}`);
  const result = round.result;
  const byName = new Map(names.map((n, i) => [n, ids[i]!]));
  const inSum = new Set(result.survivors);
  const bytesPerClient: Record<string, number> = {};
  for (const [flag, phase] of Object.entries(SECAGG_PHASE_NAMES)) {
    const c = round.costs[phase];
    bytesPerClient[flag] = c ? Math.round(c.receivedPerClient + c.sentPerClient) : 0;
  }
  const output: SecAggRunOutput = {
    sum: result.sum.map((l) => Array.from(l)),
    mean: result.mean.map((l) => Array.from(l)),
    survivors: names.filter((n) => inSum.has(n)).map((n) => byName.get(n)!),
    precisionBits: result.precisionBits,
    bytesPerClient,
  };
  try {
    writeFileSync(options.out, `${JSON.stringify(output)}\n`);
  } catch (error) {
    throw new UsageError(
      `cannot write ${options.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  return output;
}

function parseThreshold(value: string): number {
  const t = parseNumber(value, 'threshold', false);
  if (!(Number.isInteger(t) ? t >= 2 : t > 0 && t < 1))
    throw new UsageError(`--threshold must be an integer ≥ 2 or a fraction in (0, 1), got '${value}'`);
  return t;
}

export function register(program: Command): void {
  const secagg = program
    .command('secagg')
    .description('secure aggregation (Bonawitz et al. 2017 with the SecAgg+ graph) run in one process');
  secagg
    .command('run')
    .description(
      'run every client and the server of one round over updates.json and write {"sum","mean","survivors","precisionBits","bytesPerClient"}; exit 2 on bad input, 3 when the round aborts below threshold',
    )
    .requiredOption(
      '--in <file>',
      'updates.json {"clients":[{"id"?:…,"num_examples":N,"weights":[[...],...]}]}',
    )
    .requiredOption('--out <file>', 'result.json')
    .requiredOption(
      '--threshold <t>',
      'Shamir threshold: shares needed out of each neighbourhood (integer ≥ 2, or a fraction of it)',
    )
    .option('--bound <b>', 'every value lies in [-b, b] (default 1)')
    .option(
      '--neighbours <k>',
      'neighbours per client (default 2⌈1.5·log2 n⌉, an odd k is rounded up; n-1 or more = the complete graph)',
    )
    .option(
      '--drop <spec...>',
      `PHASE:ID,ID — these clients send nothing from PHASE on (${Object.keys(SECAGG_PHASE_NAMES).join(', ')})`,
    )
    .option('--seed <s>', 'derive every key and mask from this seed (reproducible runs; never in production)')
    .action(async (opts: Record<string, string | string[] | undefined>) => {
      const str = (name: string) => opts[name] as string | undefined;
      const out = await runSecAggFile({
        in: str('in')!,
        out: str('out')!,
        threshold: parseThreshold(str('threshold')!),
        bound: str('bound') === undefined ? undefined : parseNumber(str('bound')!, 'bound', false),
        neighbours:
          str('neighbours') === undefined ? undefined : parseNumber(str('neighbours')!, 'neighbours', true),
        drop: opts['drop'] as string[] | undefined,
        seed: str('seed'),
      });
      process.stdout.write(
        `wrote ${str('out')} (${out.survivors.length} survivors, ${out.precisionBits} fractional bits)\n`,
      );
    });
}
