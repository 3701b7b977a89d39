import { describe, expect, it } from 'vitest';
import { BoundedCache, cacheLoad } from './bounded-cache.js';

describe('BoundedCache', () => {
  it('never holds more than its capacity and evicts the least recently used entry', () => {
    const cache = new BoundedCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    expect(cache.get('a')).toBe(1); // a is now the most recently used
    cache.set('c', 3);
    expect(cache.size).toBe(2);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.get('c')).toBe(3);
    cache.set('a', 10); // replacing keeps one entry per key
    expect(cache.size).toBe(2);
    expect(cache.peek('a')).toBe(10);
    expect(cache.delete('a')).toBe(true);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('refuses a capacity below one', () => {
    expect(() => new BoundedCache(0)).toThrow(RangeError);
    expect(() => new BoundedCache(1.5)).toThrow(RangeError);
  });
});

describe('cacheLoad', () => {
  it('keeps the load in flight, so later callers share it, and keeps its result', async () => {
    const cache = new BoundedCache<string, Promise<number>>(4);
    let loads = 0;
    const first = cacheLoad(cache, 'k', async () => ++loads);
    expect(cache.get('k')).toBe(first);
    await expect(first).resolves.toBe(1);
    await expect(cache.get('k')).resolves.toBe(1);
    expect(loads).toBe(1);
  });

  it('drops a failed load, so the next call loads again', async () => {
    const cache = new BoundedCache<string, Promise<number>>(4);
    const failed = cacheLoad(cache, 'k', () => Promise.reject(new Error('backend away')));
    await expect(failed).rejects.toThrow('backend away');
    expect(cache.peek('k')).toBeUndefined();
    await expect(cacheLoad(cache, 'k', async () => 2)).resolves.toBe(2);
    expect(cache.size).toBe(1);
  });

  it('does not drop a newer entry when an older load fails after it was replaced', async () => {
    const cache = new BoundedCache<string, Promise<number>>(4);
    let fail!: (error: Error) => void;
    const old = cacheLoad(cache, 'k', () => new Promise<number>((_, reject) => (fail = reject)));
    const newer = cacheLoad(cache, 'k', async () => 3);
    fail(new Error('late failure'));
    await expect(old).rejects.toThrow('late failure');
    expect(cache.peek('k')).toBe(newer);
  });
});
