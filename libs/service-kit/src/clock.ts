/** Where a service reads the time: a token, so a test substitutes a fake clock; production uses Date.now. */
export const CLOCK = Symbol.for('edgefl.clock');

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };
