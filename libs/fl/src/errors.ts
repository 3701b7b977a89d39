/** Why an update (or a call) was refused. Stable strings: services count them in metrics and dead letters. */
export type RejectionReason =
  'empty' | 'layer-count' | 'layer-length' | 'non-finite' | 'norm-exceeded' | 'bad-num-examples';

/** An update was refused before it could touch an aggregate. `index` is its position in the input (if any). */
export class InvalidUpdateError extends Error {
  override readonly name = 'InvalidUpdateError';
  constructor(
    readonly reason: RejectionReason,
    message: string,
    readonly index?: number,
  ) {
    super(index === undefined ? message : `update ${index}: ${message}`);
  }
}

/** A parameter of a rule is outside its domain (e.g. Bulyan with n < 4f+3, β ≥ 0.5). */
export class InvalidParameterError extends Error {
  override readonly name = 'InvalidParameterError';
}

/** A privacy-budget ledger refused a round because it would exceed the (ε, δ) budget. */
export class BudgetExceededError extends Error {
  override readonly name = 'BudgetExceededError';
  constructor(
    readonly tenant: string,
    readonly model: string,
    readonly epsilonAfter: number,
    readonly epsilonBudget: number,
  ) {
    super(
      `privacy budget of tenant ${tenant} model ${model} exceeded: the round would bring epsilon to ${epsilonAfter.toPrecision(6)} > budget ${epsilonBudget}`,
    );
  }
}

/** A compressed payload could not be decoded (wrong magic, truncated, inconsistent header). */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}
