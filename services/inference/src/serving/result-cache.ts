import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';

/** The key of a result: a hash of the model version and the input tensor's bytes and shape. */
export function cacheKey(modelId: string, version: number, rows: number, input: Float32Array): string {
  return createHash('sha256')
    .update(`${modelId}\0${version}\0${rows}\0`)
    .update(new Uint8Array(input.buffer, input.byteOffset, input.byteLength))
    .digest('base64url');
}

/** Outputs of earlier identical requests: in-process LRU, and Redis shared by replicas when REDIS_URL is set. */
export class ResultCache {
  readonly #lru: LRUCache<string, Float32Array> | null;
  readonly #redis: Redis | null;
  readonly #ttlMs: number;
  #redisErrors = 0;

  constructor(
    options: { entries: number; ttlMs: number; redisUrl: string | undefined },
    private readonly logger: Logger,
  ) {
    this.#ttlMs = options.ttlMs;
    this.#lru = options.entries > 0 ? new LRUCache({ max: options.entries, ttl: options.ttlMs }) : null;
    this.#redis = options.redisUrl
      ? new Redis(options.redisUrl, {
          lazyConnect: true,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
          connectTimeout: 2_000,
        })
      : null;
    this.#redis?.on('error', (error: Error) => {
      if (this.#redisErrors++ % 100 === 0)
        this.logger.warn({ err: error.message }, 'result cache: Redis error (answers go uncached meanwhile)');
    });
  }

  get enabled(): boolean {
    return this.#lru !== null;
  }

  /** Connects to Redis, when configured (the readiness check reports it). */
  async connect(): Promise<void> {
    if (this.#redis && this.#redis.status === 'wait') await this.#redis.connect();
  }

  async health(): Promise<{ ready: boolean; detail: string }> {
    if (!this.#redis) return { ready: true, detail: 'in-process LRU' };
    try {
      await this.#redis.ping();
      return { ready: true, detail: 'in-process LRU + Redis' };
    } catch (error) {
      return { ready: false, detail: `Redis: ${(error as Error).message}` };
    }
  }

  async get(key: string): Promise<Float32Array | undefined> {
    if (!this.#lru) return undefined;
    const local = this.#lru.get(key);
    if (local || !this.#redis) return local;
    try {
      const bytes = await this.#redis.getBuffer(`edgefl:inference:${key}`);
      if (!bytes || bytes.byteLength % 4 !== 0) return undefined;
      const value = new Float32Array(new Uint8Array(bytes).buffer);
      this.#lru.set(key, value);
      return value;
    } catch {
      return undefined;
    }
  }

  set(key: string, value: Float32Array): void {
    if (!this.#lru) return;
    this.#lru.set(key, value);
    if (this.#redis?.status === 'ready')
      this.#redis
        .set(
          `edgefl:inference:${key}`,
          Buffer.from(value.buffer, value.byteOffset, value.byteLength),
          'PX',
          this.#ttlMs,
        )
        .catch(() => undefined);
  }

  async close(): Promise<void> {
    if (this.#redis) await this.#redis.quit().catch(() => this.#redis?.disconnect());
  }
}
