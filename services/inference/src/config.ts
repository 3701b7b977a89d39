import { randomUUID } from 'node:crypto';
import { csv, defineServiceConfig, positiveInt, secret } from '@edgefl/service-kit';
import { z } from 'zod';

const tokenText = z
  .string()
  .min(16, 'at least 16 characters')
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');
/** Compose files pass unset variables as empty strings. */
const unsetWhenEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema);
const identifier = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** `tenant=token,tenant=token`: the bearer tokens direct API callers present; a token names one tenant. */
const tenantTokens = csv.pipe(
  z.array(z.string()).transform((list, ctx) => {
    const out = new Map<string, string>();
    for (const entry of list) {
      const at = entry.indexOf('=');
      const tenant = entry.slice(0, at);
      const token = entry.slice(at + 1);
      if (at < 1 || !identifier.test(tenant) || !tokenText.safeParse(token).success) {
        ctx.addIssue({
          code: 'custom',
          message: 'entries tenant=token (a tenant id, a token of 16+ printable characters)',
        });
        return z.NEVER;
      }
      if (out.has(token)) {
        ctx.addIssue({ code: 'custom', message: 'a token names one tenant only' });
        return z.NEVER;
      }
      out.set(token, tenant);
    }
    return out;
  }),
);

/** Comma-separated base64 raw Ed25519 public keys the release manifests must be signed by. */
const releaseKeys = csv.pipe(
  z.array(
    z
      .string()
      .refine(
        (entry) => Buffer.from(entry, 'base64').byteLength === 32,
        'base64 raw 32-byte Ed25519 public keys',
      ),
  ),
);

/** Per-model batching overrides: `{"fraud": {"maxBatchSize": 64, "maxQueueDelayUs": 500}}`. */
const BatchingOverride = z.strictObject({
  maxBatchSize: z.number().int().min(1).max(4096).optional(),
  maxQueueDelayUs: z.number().int().min(0).max(1_000_000).optional(),
  maxQueue: z.number().int().min(1).max(1_000_000).optional(),
});
const batchingOverrides = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'JSON object of model id → batching settings' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().regex(identifier), BatchingOverride));

/** The inference's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const inferenceConfig = defineServiceConfig({
  service: 'inference',
  defaultPort: 7102,
  ownShape: {
    /** Base URL of the registry the models come from (versions, artifacts, release keys). Unset: nothing is served. */
    INFERENCE_REGISTRY_URL: z.url().optional(),
    /** The registry's management token (REGISTRY_ADMIN_TOKEN): lists releases and downloads artifacts. Secret. */
    INFERENCE_REGISTRY_TOKEN: secret(unsetWhenEmpty(tokenText.optional())),
    /**
     * Pinned release-signing public keys (comma-separated base64 raw Ed25519). Unset: the keys the registry publishes
     * at /v1/release-keys are trusted on first use and logged.
     */
    INFERENCE_RELEASE_KEYS: unsetWhenEmpty(releaseKeys.optional()),
    /** Bearer tokens of direct API callers, `tenant=token,…` (secret): a caller reaches only its tenant's models. */
    INFERENCE_TENANT_TOKENS: secret(unsetWhenEmpty(tenantTokens.optional())),
    /** Management API token (experiments); unset: generated at first boot into <data dir>/inference-admin-token. */
    INFERENCE_ADMIN_TOKEN: secret(unsetWhenEmpty(tokenText.optional())),
    /** ONNX Runtime sessions per model version (how many batches of one version run at once). */
    INFERENCE_POOL_SIZE: positiveInt(2),
    /** Intra-op threads per session. */
    INFERENCE_INTRA_OP_THREADS: positiveInt(1),
    /** Warm-up runs of each session before it takes traffic. */
    INFERENCE_WARMUP_RUNS: positiveInt(3),
    /** Loaded versions kept per model besides the serving one (addressable by /versions/{v}). */
    INFERENCE_KEEP_VERSIONS: z.coerce.number().int().min(0).max(16).default(2),
    /** Dynamic batching: most rows in one session run. */
    INFERENCE_MAX_BATCH_SIZE: positiveInt(32),
    /** Dynamic batching: longest a request waits for others to join its batch (microseconds; 0 = no wait). */
    INFERENCE_MAX_QUEUE_DELAY_US: z.coerce.number().int().min(0).max(1_000_000).default(500),
    /** Requests queued per model version before new ones are refused (429 / RESOURCE_EXHAUSTED). */
    INFERENCE_MAX_QUEUE: positiveInt(1024),
    /** Per-model batching overrides, JSON: {"<model>": {"maxBatchSize", "maxQueueDelayUs", "maxQueue"}}. */
    INFERENCE_BATCHING: batchingOverrides.optional(),
    /** Result cache entries (0 disables it). */
    INFERENCE_CACHE_ENTRIES: z.coerce.number().int().min(0).default(10_000),
    /** Result cache time to live (ms). */
    INFERENCE_CACHE_TTL_MS: positiveInt(10 * 60_000),
    /** Redis for a result cache shared by replicas (e.g. redis://127.0.0.1:6379); unset: in-process LRU only. */
    REDIS_URL: secret(
      z
        .string()
        .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
        .optional(),
    ),
    /** Inference logs are published in batches of at most this many… */
    INFERENCE_LOG_BATCH: positiveInt(200),
    /** …or after this long (ms). */
    INFERENCE_LOG_FLUSH_MS: positiveInt(250),
    /** Inference logs buffered at most; past it the oldest are dropped and counted. */
    INFERENCE_LOG_BUFFER: positiveInt(50_000),
    /** gRPC port of inference.GRPCInferenceService (0: none). */
    INFERENCE_GRPC_PORT: z.coerce.number().int().min(0).max(65_535).default(0),
    /** This replica's id: its own consumer group follows every release event. Default random per boot. */
    INFERENCE_INSTANCE_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    /** Shadow statistics are published as rollout health every this many ms. */
    INFERENCE_SHADOW_WINDOW_MS: positiveInt(30_000),
  },
  mapOwn: (env) => ({
    registryUrl: env.INFERENCE_REGISTRY_URL?.replace(/\/+$/, ''),
    registryToken: env.INFERENCE_REGISTRY_TOKEN,
    releaseKeys: env.INFERENCE_RELEASE_KEYS,
    tenantTokens: env.INFERENCE_TENANT_TOKENS ?? new Map<string, string>(),
    adminToken: env.INFERENCE_ADMIN_TOKEN,
    poolSize: env.INFERENCE_POOL_SIZE,
    intraOpThreads: env.INFERENCE_INTRA_OP_THREADS,
    warmupRuns: env.INFERENCE_WARMUP_RUNS,
    keepVersions: env.INFERENCE_KEEP_VERSIONS,
    batching: {
      maxBatchSize: env.INFERENCE_MAX_BATCH_SIZE,
      maxQueueDelayUs: env.INFERENCE_MAX_QUEUE_DELAY_US,
      maxQueue: env.INFERENCE_MAX_QUEUE,
    },
    batchingOverrides: env.INFERENCE_BATCHING ?? {},
    cache: {
      entries: env.INFERENCE_CACHE_ENTRIES,
      ttlMs: env.INFERENCE_CACHE_TTL_MS,
      redisUrl: env.REDIS_URL,
    },
    logs: {
      batch: env.INFERENCE_LOG_BATCH,
      flushMs: env.INFERENCE_LOG_FLUSH_MS,
      buffer: env.INFERENCE_LOG_BUFFER,
    },
    grpcPort: env.INFERENCE_GRPC_PORT,
    instanceId: env.INFERENCE_INSTANCE_ID ?? randomUUID().slice(0, 8),
    shadow: { windowMs: env.INFERENCE_SHADOW_WINDOW_MS },
  }),
});

export type InferenceConfig = ReturnType<typeof inferenceConfig.load>;
export type InferenceOwnConfig = InferenceConfig['own'];
export type BatchingSettings = InferenceOwnConfig['batching'];
