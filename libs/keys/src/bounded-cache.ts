/**
 * A least-recently-used map with a fixed capacity, for caches of immutable things (a key version's imported key,
 * a transit key's public keys) that must not grow without bound in a long-lived process. Written by hand: it is
 * Map's insertion order plus a size check, and lru-cache would be a new dependency of the edge runtime for that.
 */
export class BoundedCache<K, V> {
  readonly capacity: number;
  readonly #entries = new Map<K, V>();

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError('a cache holds at least one entry');
    this.capacity = capacity;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The value, marked as the most recently used; undefined when absent. */
  get(key: K): V | undefined {
    if (!this.#entries.has(key)) return undefined;
    const value = this.#entries.get(key) as V;
    this.#entries.delete(key);
    this.#entries.set(key, value);
    return value;
  }

  /** The value without changing the order (for checks that are not a use). */
  peek(key: K): V | undefined {
    return this.#entries.get(key);
  }

  set(key: K, value: V): void {
    this.#entries.delete(key);
    this.#entries.set(key, value);
    if (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  delete(key: K): boolean {
    return this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Starts `load` and keeps its promise in `cache` under `key`, so concurrent callers share the one request in flight
 * and later callers get its result; a load that fails is dropped (unless the entry was replaced meanwhile), so the
 * next call loads again. Returns the promise.
 */
export function cacheLoad<K, V>(
  cache: BoundedCache<K, Promise<V>>,
  key: K,
  load: () => Promise<V>,
): Promise<V> {
  const pending = load();
  cache.set(key, pending);
  pending.catch(() => {
    if (cache.peek(key) === pending) cache.delete(key);
  });
  return pending;
}
