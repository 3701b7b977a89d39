import { InvalidParameterError } from './errors.js';

/**
 * Rényi-DP accountant for the Poisson-sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Rényi
 * Differential Privacy of the Sampled Gaussian Mechanism", §3.3), exact at integer and fractional orders,
 * following the same series as Opacus (`opacus/accountants/analysis/rdp.py`, itself from TF Privacy).
 * Written by hand: there is no maintained JavaScript DP accountant.
 */

/** Opacus's default orders: 1.1, 1.2, …, 10.9, 12, 13, …, 63. */
export const OPACUS_DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
]);

/** Google dp_accounting's default orders: 1.1 … 10.9, 11 … 63, 128, 256, 512, 1024. */
export const DP_ACCOUNTING_DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
]);

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

/** log(exp(a) + exp(b)). */
function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(exp(a) − exp(b)), a ≥ b. */
function logSub(a: number, b: number): number {
  if (a < b) throw new RangeError('logSub: the result would be negative');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  const d = a - b;
  return d > 700 ? a : Math.log(Math.expm1(d)) + b;
}

/** erf(x) for 0 ≤ x < 3 by the all-positive series erf x = (2/√π)·e^{−x²}·Σ 2ⁿx^{2n+1}/(2n+1)!!. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * log(erfc(x)) · valid for every finite x, accurate in the far tail (where erfc underflows): for x ≥ 2.5 the
 * continued fraction erfc x = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …)))) evaluated by Lentz's method.
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return -Infinity;
  if (x < 0) return Math.log(2 - Math.exp(logErfc(-x)));
  if (x < 2.5) return Math.log1p(-erfSeries(x));
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = x + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

function logAIntAlpha(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  let logBinom = 0; // log C(alpha, 0)
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * logQ + (alpha - i) * log1mQ + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

function logAFracAlpha(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const logQ = Math.log(q);
  const log1mQ = Math.log1p(-q);
  const sqrt2Sigma = Math.SQRT2 * sigma;
  let logAbsCoef = 0; // log |C(alpha, i)|, built as a running product
  let coefPositive = true;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = (alpha - i + 1) / i;
      if (factor < 0) coefPositive = !coefPositive;
      logAbsCoef += Math.log(Math.abs(factor));
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * logQ + j * log1mQ;
    const logT1 = logAbsCoef + j * logQ + i * log1mQ;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coefPositive) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 100_000) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism at order `alpha`. */
export function rdpOfStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAIntAlpha(q, sigma, alpha) : logAFracAlpha(q, sigma, alpha);
  return logA / (alpha - 1);
}

export function assertMechanism(q: number, sigma: number, steps: number): void {
  if (!(typeof q === 'number' && q >= 0 && q <= 1))
    throw new InvalidParameterError(`sampling rate q must be in [0, 1], got ${String(q)}`);
  if (!(typeof sigma === 'number' && sigma >= 0 && Number.isFinite(sigma))) {
    throw new InvalidParameterError(
      `noise multiplier sigma must be a finite number >= 0, got ${String(sigma)}`,
    );
  }
  if (!(Number.isInteger(steps) && steps >= 0))
    throw new InvalidParameterError(`steps must be a non-negative integer, got ${String(steps)}`);
}

export function assertOrders(orders: readonly number[]): void {
  if (!Array.isArray(orders) || orders.length === 0)
    throw new InvalidParameterError('at least one Rényi order is needed');
  for (const a of orders) {
    if (!(typeof a === 'number' && a > 1 && Number.isFinite(a)))
      throw new InvalidParameterError(`Rényi orders must be finite numbers > 1, got ${String(a)}`);
  }
}

/** RDP at every order after `steps` compositions of the sampled Gaussian mechanism (RDP composes additively). */
export function computeRdp(
  q: number,
  sigma: number,
  steps: number,
  orders: readonly number[] = OPACUS_DEFAULT_ORDERS,
): number[] {
  assertMechanism(q, sigma, steps);
  assertOrders(orders);
  return orders.map((a) => rdpOfStep(q, sigma, a) * steps);
}

export type RdpConversion = 'improved' | 'classic';

/**
 * (ε, δ) from RDP, minimised over the orders.
 * - `improved` (default): Balle, Barthe, Gaboardi, Hsu, Sato 2020, "Hypothesis Testing Interpretations and Rényi
 *   Differential Privacy", Thm 21: ε = RDP(α) − (log δ + log α)/(α−1) + log((α−1)/α) (as Opacus).
 * - `classic`: Mironov 2017, "Rényi Differential Privacy", Prop. 3: ε = RDP(α) − log δ/(α−1).
 * Orders giving NaN are ignored; ε is clamped at 0 from below.
 */
export function rdpToEpsilon(
  orders: readonly number[],
  rdp: readonly number[],
  delta: number,
  conversion: RdpConversion = 'improved',
): { epsilon: number; order: number } {
  if (orders.length !== rdp.length)
    throw new InvalidParameterError('orders and rdp must have the same length');
  if (!(typeof delta === 'number' && delta > 0 && delta < 1))
    throw new InvalidParameterError(`delta must be in (0, 1), got ${String(delta)}`);
  let best = Infinity;
  let order = Number.NaN;
  const logDelta = Math.log(delta);
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k]!;
    const r = rdp[k]!;
    const eps =
      conversion === 'classic'
        ? r - logDelta / (a - 1)
        : r - (logDelta + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (eps < best) {
      best = eps;
      order = a;
    }
  }
  return { epsilon: Math.max(0, best), order };
}

export interface EpsilonQuery {
  /** Poisson sampling rate per step. */
  q: number;
  /** Noise multiplier: Gaussian std / L2 sensitivity. */
  sigma: number;
  steps: number;
  delta: number;
  orders?: readonly number[];
  conversion?: RdpConversion;
}

/** ε after `steps` steps of the Poisson-sampled Gaussian mechanism. */
export function computeEpsilon(query: EpsilonQuery): { epsilon: number; order: number } {
  const orders = query.orders ?? OPACUS_DEFAULT_ORDERS;
  return rdpToEpsilon(
    orders,
    computeRdp(query.q, query.sigma, query.steps, orders),
    query.delta,
    query.conversion,
  );
}

/** Accumulates RDP over heterogeneous steps (different q, σ per round). */
export class RdpAccountant {
  readonly orders: readonly number[];
  private readonly rdp: Float64Array;

  constructor(orders: readonly number[] = OPACUS_DEFAULT_ORDERS, initial?: readonly number[]) {
    assertOrders(orders);
    this.orders = [...orders];
    this.rdp = new Float64Array(this.orders.length);
    if (initial) {
      if (initial.length !== this.orders.length || !initial.every((v) => v >= 0)) {
        throw new InvalidParameterError('initial RDP must be non-negative, one value per order');
      }
      this.rdp.set(initial);
    }
  }

  /** RDP that `steps` more steps would add, without recording them. */
  cost(q: number, sigma: number, steps = 1): number[] {
    return computeRdp(q, sigma, steps, this.orders);
  }

  step(q: number, sigma: number, steps = 1): void {
    const add = this.cost(q, sigma, steps);
    for (let k = 0; k < add.length; k++) this.rdp[k] = this.rdp[k]! + add[k]!;
  }

  /** ε spent so far at `delta`. */
  epsilon(delta: number, conversion: RdpConversion = 'improved'): number {
    return rdpToEpsilon(this.orders, [...this.rdp], delta, conversion).epsilon;
  }

  /** The accumulated RDP per order (for persistence). */
  snapshot(): number[] {
    return [...this.rdp];
  }
}
