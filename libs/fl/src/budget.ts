import { BudgetExceededError, InvalidParameterError } from './errors.js';
import {
  OPACUS_DEFAULT_ORDERS,
  assertMechanism,
  computeRdp,
  rdpToEpsilon,
  type RdpConversion,
} from './rdp.js';

export interface PrivacyBudget {
  /** Total ε allowed over the model's life. */
  epsilon: number;
  /** The δ at which ε is reported. */
  delta: number;
}

export interface RoundCharge {
  /** Poisson sampling rate of clients in the round. */
  q: number;
  /** Noise multiplier of the round. */
  sigma: number;
  /** Mechanism applications in the round (1 for one aggregate). */
  steps?: number;
  /** Idempotency key: a round spends at most once, however often it is replayed. */
  roundId?: string;
}

interface Entry {
  rdp: number[];
  rounds: string[];
}

/** Serializable state (to persist the ledger in a store and restore it after a restart). */
export interface LedgerState {
  orders: number[];
  entries: Record<string, Entry>;
}

/**
 * Privacy budget per tenant × model, kept as RDP per order (RDP composes by addition; Mironov 2017) and
 * converted to (ε, δ) when asked. `spend` refuses (throws `BudgetExceededError`, nothing recorded) a round that
 * would take ε past the budget.
 */
export class PrivacyBudgetLedger {
  private readonly entries = new Map<string, Entry>();
  private readonly orders: number[];

  constructor(
    private readonly budgetFor: (tenant: string, model: string) => PrivacyBudget,
    options: { orders?: readonly number[]; conversion?: RdpConversion; state?: LedgerState } = {},
  ) {
    this.orders = [...(options.state?.orders ?? options.orders ?? OPACUS_DEFAULT_ORDERS)];
    this.conversion = options.conversion ?? 'improved';
    if (options.state) {
      for (const [key, e] of Object.entries(options.state.entries)) {
        if (
          !Array.isArray(e.rdp) ||
          e.rdp.length !== this.orders.length ||
          !e.rdp.every((v) => typeof v === 'number' && v >= 0)
        ) {
          throw new InvalidParameterError(`ledger state for ${key} is malformed`);
        }
        this.entries.set(key, { rdp: [...e.rdp], rounds: [...(e.rounds ?? [])] });
      }
    }
  }

  private readonly conversion: RdpConversion;

  private static key(tenant: string, model: string): string {
    if (typeof tenant !== 'string' || tenant === '' || typeof model !== 'string' || model === '') {
      throw new InvalidParameterError('tenant and model must be non-empty strings');
    }
    return JSON.stringify([tenant, model]);
  }

  private budget(tenant: string, model: string): PrivacyBudget {
    const b = this.budgetFor(tenant, model);
    if (!(b.epsilon >= 0 && Number.isFinite(b.epsilon)) || !(b.delta > 0 && b.delta < 1)) {
      throw new InvalidParameterError(`invalid privacy budget for tenant ${tenant} model ${model}`);
    }
    return b;
  }

  /** ε spent so far. */
  spent(tenant: string, model: string): number {
    const e = this.entries.get(PrivacyBudgetLedger.key(tenant, model));
    if (!e) return 0;
    return rdpToEpsilon(this.orders, e.rdp, this.budget(tenant, model).delta, this.conversion).epsilon;
  }

  /** ε the ledger would report after the round, without recording it. */
  preview(tenant: string, model: string, charge: RoundCharge): number {
    const steps = charge.steps ?? 1;
    assertMechanism(charge.q, charge.sigma, steps);
    const e = this.entries.get(PrivacyBudgetLedger.key(tenant, model));
    if (charge.roundId !== undefined && e?.rounds.includes(charge.roundId)) return this.spent(tenant, model);
    const add = computeRdp(charge.q, charge.sigma, steps, this.orders);
    const total = add.map((v, k) => v + (e?.rdp[k] ?? 0));
    return rdpToEpsilon(this.orders, total, this.budget(tenant, model).delta, this.conversion).epsilon;
  }

  /** Records the round, or throws `BudgetExceededError` and records nothing. Returns ε after the round. */
  spend(tenant: string, model: string, charge: RoundCharge): number {
    const key = PrivacyBudgetLedger.key(tenant, model);
    const budget = this.budget(tenant, model);
    const e = this.entries.get(key);
    if (charge.roundId !== undefined && e?.rounds.includes(charge.roundId)) return this.spent(tenant, model);
    const after = this.preview(tenant, model, charge);
    if (!(after <= budget.epsilon)) throw new BudgetExceededError(tenant, model, after, budget.epsilon);
    const add = computeRdp(charge.q, charge.sigma, charge.steps ?? 1, this.orders);
    const entry = e ?? { rdp: this.orders.map(() => 0), rounds: [] };
    entry.rdp = entry.rdp.map((v, k) => v + add[k]!);
    if (charge.roundId !== undefined) entry.rounds.push(charge.roundId);
    this.entries.set(key, entry);
    return after;
  }

  toJSON(): LedgerState {
    const entries: Record<string, Entry> = {};
    for (const [k, e] of this.entries) entries[k] = { rdp: [...e.rdp], rounds: [...e.rounds] };
    return { orders: [...this.orders], entries };
  }
}
