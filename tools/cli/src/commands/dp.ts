import { computeEpsilon, InvalidParameterError, OPACUS_DEFAULT_ORDERS, type RdpConversion } from '@edgefl/fl';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

function num(value: string | undefined, name: string): number {
  const n = Number(value);
  if (value === undefined || value.trim() === '' || !Number.isFinite(n))
    throw new UsageError(`--${name} must be a number, got '${String(value)}'`);
  return n;
}

/** `default` (Opacus's grid) or a comma-separated list of Rényi orders. */
export function parseOrders(spec: string): readonly number[] {
  if (spec === 'default') return OPACUS_DEFAULT_ORDERS;
  const orders = spec.split(',').map((s) => num(s, 'orders'));
  if (orders.length === 0 || orders.some((a) => !(a > 1)))
    throw new UsageError('--orders must be "default" or numbers > 1 separated by commas');
  return orders;
}

/** The options of `edgefl dp epsilon`, as commander hands them over (strings). */
export interface EpsilonOptions {
  q: string;
  sigma: string;
  steps: string;
  delta: string;
  orders: string;
  conversion: string;
}

export function epsilonFor(opts: EpsilonOptions): { epsilon: number; order: number } {
  const steps = num(opts.steps, 'steps');
  if (!Number.isInteger(steps)) throw new UsageError(`--steps must be an integer, got '${opts.steps}'`);
  if (opts.conversion !== 'improved' && opts.conversion !== 'classic')
    throw new UsageError('--conversion must be improved or classic');
  try {
    return computeEpsilon({
      q: num(opts.q, 'q'),
      sigma: num(opts.sigma, 'sigma'),
      steps,
      delta: num(opts.delta, 'delta'),
      orders: parseOrders(opts.orders),
      conversion: opts.conversion as RdpConversion,
    });
  } catch (error) {
    if (error instanceof InvalidParameterError) throw new UsageError(error.message);
    throw error;
  }
}

export function register(program: Command): void {
  const dp = program.command('dp').description('differential-privacy accounting');
  dp.command('epsilon')
    .description(
      'ε of the Poisson-sampled Gaussian mechanism by the RDP accountant (Mironov et al. 2019); ε is the last token printed',
    )
    .requiredOption('--q <q>', 'sampling rate per step')
    .requiredOption('--sigma <s>', 'noise multiplier')
    .requiredOption('--steps <t>', 'number of steps')
    .requiredOption('--delta <d>', 'target δ')
    .option('--orders <list>', 'default (Opacus grid) or comma-separated Rényi orders', 'default')
    .option('--conversion <kind>', 'improved (Balle et al. 2020) or classic (Mironov 2017)', 'improved')
    .action((opts: EpsilonOptions) => {
      const { epsilon, order } = epsilonFor(opts);
      process.stdout.write(`order ${order} epsilon ${epsilon}\n`);
    });
}
