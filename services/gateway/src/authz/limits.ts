// Per-connection limits: a token bucket for the message rate and a sliding count of refusals ("repeated abuse").
// A few lines each; a library would add a dependency for less than what is here.

/** Token bucket (rate per second, burst); `now` in ms is passed in so tests need no clock. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerS: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token; false when the bucket is empty (the message is over the rate). */
  take(now: number): boolean {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.ratePerS);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** Counts refusals in a sliding window; `record` says when the limit is reached (time to close the connection). */
export class AbuseCounter {
  private readonly times: number[] = [];

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  record(now: number): boolean {
    this.times.push(now);
    while (this.times.length > 0 && (this.times[0]! <= now - this.windowMs || this.times.length > this.limit))
      this.times.shift();
    return this.times.length >= this.limit;
  }
}
