import { readFileSync, writeFileSync } from 'node:fs';
import {
  createRule,
  DecodeError,
  InvalidParameterError,
  InvalidUpdateError,
  STRATEGY_NAMES,
  type ClientUpdate,
  type RuleParams,
  type StrategyName,
} from '@edgefl/fl';
import type { Command } from 'commander';
import { z } from 'zod';
import { UsageError } from '../usage-error.js';

/** `updates.json`: the `input` object of the test vectors; a client may name itself with `"id"`. */
const UpdatesFile = z.object({
  clients: z
    .array(
      z.object({
        id: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
        num_examples: z.number().positive().finite(),
        weights: z.array(z.array(z.number())).min(1),
      }),
    )
    .min(1),
});

/** Clients of updates.json with their ids: the `"id"` a client gives, else its index in the array. */
export interface ClientsFile {
  ids: Array<string | number>;
  updates: ClientUpdate[];
}

export function parseNumber(value: string, name: string, integer: boolean): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${value}'`);
  }
  return n;
}

/** Reads and validates updates.json into client updates (bad input → UsageError). */
export function readUpdates(path: string): ClientUpdate[] {
  return readClients(path).updates;
}

/** Reads and validates updates.json into client ids and updates (bad input → UsageError). */
export function readClients(path: string): ClientsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid JSON: ${(error as Error).message}`);
  }
  const parsed = UpdatesFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(`${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const ids = parsed.data.clients.map((c, i) => c.id ?? i);
  const seen = new Set<string>();
  for (const id of ids) {
    if (seen.has(String(id))) throw new UsageError(`${path}: client id ${JSON.stringify(id)} is used twice`);
    seen.add(String(id));
  }
  return {
    ids,
    updates: parsed.data.clients.map((c) => ({
      numExamples: c.num_examples,
      weights: c.weights.map((l) => Float32Array.from(l)),
    })),
  };
}

export interface AggregateOptions extends RuleParams {
  strategy: string;
  in: string;
  out: string;
}

/** Runs one aggregation rule over updates.json and writes result.json. */
export function aggregateFile(options: AggregateOptions): { selected?: number[] } {
  if (!(STRATEGY_NAMES as readonly string[]).includes(options.strategy)) {
    throw new UsageError(`unknown strategy '${options.strategy}'; one of ${STRATEGY_NAMES.join(', ')}`);
  }
  const updates = readUpdates(options.in);
  let result;
  try {
    result = createRule(options.strategy as StrategyName, options).aggregate(updates);
  } catch (error) {
    if (
      error instanceof InvalidUpdateError ||
      error instanceof InvalidParameterError ||
      error instanceof DecodeError
    ) {
      throw new UsageError(`${options.in}: ${error.message}`);
    }
    throw error;
  }
  const out: { weights: number[][]; selected?: number[] } = {
    weights: result.weights.map((l) => Array.from(l)),
  };
  if (result.selected) out.selected = result.selected;
  try {
    writeFileSync(options.out, `${JSON.stringify(out)}\n`);
  } catch (error) {
    throw new UsageError(
      `cannot write ${options.out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  return { selected: result.selected };
}

export function register(program: Command): void {
  const fl = program
    .command('fl')
    .description('federated-learning math on files (aggregation rules as the aggregator runs them)');
  fl.command('aggregate')
    .description(
      'aggregate client updates with one rule: updates.json {"clients":[{"num_examples":N,"weights":[[...],...]}]} → result.json',
    )
    .requiredOption('--strategy <name>', `one of ${STRATEGY_NAMES.join(', ')}`)
    .option('--f <n>', 'Byzantine bound (krum, multi-krum, bulyan)')
    .option('--m <n>', 'clients kept by multi-krum')
    .option('--beta <b>', 'trim fraction per tail (trimmed-mean)')
    .option('--tau <t>', 'clipping radius (centered-clipping; default: median distance)')
    .option('--iterations <n>', 'centered-clipping iterations (default 3)')
    .requiredOption('--in <file>', 'updates.json')
    .requiredOption('--out <file>', 'result.json')
    .action((opts: Record<string, string>) => {
      const params: RuleParams = {};
      if (opts['f'] !== undefined) params.f = parseNumber(opts['f'], 'f', true);
      if (opts['m'] !== undefined) params.m = parseNumber(opts['m'], 'm', true);
      if (opts['beta'] !== undefined) params.beta = parseNumber(opts['beta'], 'beta', false);
      if (opts['tau'] !== undefined) params.tau = parseNumber(opts['tau'], 'tau', false);
      if (opts['iterations'] !== undefined)
        params.iterations = parseNumber(opts['iterations'], 'iterations', true);
      const { selected } = aggregateFile({
        ...params,
        strategy: opts['strategy']!,
        in: opts['in']!,
        out: opts['out']!,
      });
      process.stdout.write(`wrote ${opts['out']}${selected ? ` (selected ${selected.join(',')})` : ''}\n`);
    });
}
