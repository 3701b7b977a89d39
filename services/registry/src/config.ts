import { isAbsolute, join, resolve } from 'node:path';
import { csv, defineServiceConfig, positiveInt, secret } from '@edgefl/service-kit';
import { z } from 'zod';
import { parseArtifactPrefix, type ArtifactPrefix } from './events/round-artifacts.js';

const percentages = csv.pipe(
  z
    .array(z.string())
    .transform((list) => list.map(Number))
    .pipe(z.array(z.number().gt(0).max(100)))
    .refine((list) => list.every((p, i) => i === 0 || p > list[i - 1]!), 'increasing percentages')
    .refine((list) => list[list.length - 1] === 100, 'the last stage is 100'),
);

/** The registry's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const registryConfig = defineServiceConfig({
  service: 'registry',
  defaultPort: 7104,
  ownShape: {
    /** SQLite file of the metadata store when DATABASE_URL is not set (default <data dir>/registry.sqlite). */
    REGISTRY_SQLITE_PATH: z.string().min(1).optional(),
    /** Directory of the encrypted artifacts and deltas (default <data dir>/registry-artifacts). */
    REGISTRY_ARTIFACT_DIR: z.string().min(1).optional(),
    REGISTRY_MAX_UPLOAD_BYTES: positiveInt(64 * 1024 * 1024),
    /** Default rollout stages, percentages of eligible devices, e.g. 1,10,50,100. */
    REGISTRY_ROLLOUT_STAGES: percentages.default([1, 10, 50, 100]),
    REGISTRY_ROLLOUT_TICK_MS: positiveInt(1_000),
    REGISTRY_MIN_SOAK_MS: z.coerce
      .number()
      .int()
      .min(0)
      .default(10 * 60_000),
    REGISTRY_MIN_DEVICES: z.coerce.number().int().min(0).default(10),
    REGISTRY_DEVICE_TIMEOUT_MS: positiveInt(30 * 60_000),
    REGISTRY_MANIFEST_TTL_S: positiveInt(7 * 24 * 3600),
    REGISTRY_DEVICE_TOKEN_TTL_S: positiveInt(900),
    /**
     * `required` (default): manifests and downloads need the device token the registry issued. `off` is an explicit
     * opt-out (a warning is logged at every boot).
     */
    REGISTRY_DEVICE_AUTH: z.enum(['off', 'required']).default('required'),
    /**
     * Bearer token of the management API (tenants, devices, models, versions, releases). Secret: never echoed or
     * logged. Unset (or empty): generated at first boot into <data dir>/registry-admin-token (0600).
     */
    REGISTRY_ADMIN_TOKEN: secret(
      z.preprocess(
        (value) => (value === '' ? undefined : value),
        z
          .string()
          .min(16, 'at least 16 characters')
          .max(512)
          .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
          .optional(),
      ),
    ),
    /** Files under the artifact dir that no committed version or delta references are removed once this old. */
    REGISTRY_SWEEP_GRACE_MS: positiveInt(60 * 60_000),
    /** How often the artifact dir is swept (and once at boot). */
    REGISTRY_SWEEP_INTERVAL_MS: positiveInt(60 * 60_000),
    /** How many older versions get a direct delta to each new version. */
    REGISTRY_DELTA_WINDOW: z.coerce.number().int().min(0).max(32).default(3),
    /**
     * Where round results may keep their weights by reference (comma-separated absolute directories / file:// or
     * http(s):// prefixes). Empty (default): by-reference results are dead-lettered.
     */
    REGISTRY_ROUND_ARTIFACT_PREFIXES: csv
      .pipe(
        z.array(z.string()).transform((list, ctx) => {
          const out: ArtifactPrefix[] = [];
          for (const raw of list) {
            try {
              out.push(parseArtifactPrefix(raw));
            } catch (error) {
              ctx.addIssue({ code: 'custom', message: (error as Error).message });
              return z.NEVER;
            }
          }
          return out;
        }),
      )
      .default([]),
  },
  mapOwn: (env, base) => {
    const inData = (path: string | undefined, fallback: string) =>
      path === undefined ? join(base.dataDir, fallback) : isAbsolute(path) ? path : resolve(path);
    return {
      sqlitePath: inData(env.REGISTRY_SQLITE_PATH, 'registry.sqlite'),
      artifactDir: inData(env.REGISTRY_ARTIFACT_DIR, 'registry-artifacts'),
      maxUploadBytes: env.REGISTRY_MAX_UPLOAD_BYTES,
      rollout: {
        stages: env.REGISTRY_ROLLOUT_STAGES,
        tickMs: env.REGISTRY_ROLLOUT_TICK_MS,
        minSoakMs: env.REGISTRY_MIN_SOAK_MS,
        minDevices: env.REGISTRY_MIN_DEVICES,
        deviceTimeoutMs: env.REGISTRY_DEVICE_TIMEOUT_MS,
      },
      manifestTtlMs: env.REGISTRY_MANIFEST_TTL_S * 1000,
      deviceTokenTtlS: env.REGISTRY_DEVICE_TOKEN_TTL_S,
      deltaWindow: env.REGISTRY_DELTA_WINDOW,
      sweep: { graceMs: env.REGISTRY_SWEEP_GRACE_MS, intervalMs: env.REGISTRY_SWEEP_INTERVAL_MS },
      deviceAuth: env.REGISTRY_DEVICE_AUTH,
      roundArtifactPrefixes: env.REGISTRY_ROUND_ARTIFACT_PREFIXES,
      adminToken: env.REGISTRY_ADMIN_TOKEN as string | undefined,
    };
  },
});

export type RegistryConfig = ReturnType<typeof registryConfig.load>;
export type RegistryOwnConfig = RegistryConfig['own'];
