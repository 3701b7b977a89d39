import { describe, expect, it } from 'vitest';
import { AbuseCounter, TokenBucket } from './limits.js';

describe('TokenBucket', () => {
  it('lets the burst through, then the rate', () => {
    const bucket = new TokenBucket(2, 3, 0);
    expect([bucket.take(0), bucket.take(0), bucket.take(0), bucket.take(0)]).toEqual([
      true,
      true,
      true,
      false,
    ]);
    expect(bucket.take(499)).toBe(false); // 0.998 token
    expect(bucket.take(501)).toBe(true); // 1.002 tokens after 501 ms at 2/s
    expect(bucket.take(10_000)).toBe(true);
    expect([bucket.take(10_000), bucket.take(10_000), bucket.take(10_000)]).toEqual([true, true, false]);
  });
});

describe('AbuseCounter', () => {
  it('trips at the limit within the window, and forgets old refusals', () => {
    const abuse = new AbuseCounter(3, 1_000);
    expect([abuse.record(0), abuse.record(10)]).toEqual([false, false]);
    expect(abuse.record(2_000)).toBe(false); // the first two fell out of the window
    expect([abuse.record(2_100), abuse.record(2_200)]).toEqual([false, true]);
  });
});
