/** Where the service reads the time (a token so tests could substitute one; production uses Date.now). */
export const CLOCK = Symbol.for('edgefl.registry.clock');
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
