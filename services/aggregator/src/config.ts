import { defineServiceConfig, positiveInt, secret } from '@edgefl/service-kit';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';

const positiveNumber = (fallback: number) => z.coerce.number().positive().finite().default(fallback);

/** The aggregator's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const aggregatorConfig = defineServiceConfig({
  service: 'aggregator',
  defaultPort: 7103,
  ownShape: {
    /** Bearer token of the rounds API (secret). Unset: generated at first boot into <data dir>/aggregator-admin-token. */
    AGGREGATOR_ADMIN_TOKEN: secret(
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
    /** Where base weights come from: the registry (GET /v1/models/{model}/versions/{v}/artifact). */
    AGGREGATOR_REGISTRY_URL: z.url().optional(),
    AGGREGATOR_REGISTRY_TOKEN: secret(z.string().min(1).optional()),
    /** Results larger than this go to an artifact file instead of inline bytes. */
    AGGREGATOR_INLINE_MAX_BYTES: positiveInt(1024 * 1024),
    /** Directory for result artifacts (the registry reads them under REGISTRY_ROUND_ARTIFACT_PREFIXES). */
    AGGREGATOR_ARTIFACT_DIR: z.string().min(1).optional(),
    /** Cap on updates held in memory by rules that need every update (median, Krum, …). */
    AGGREGATOR_MAX_HELD_UPDATES: positiveInt(5000),
    /** Default privacy budget per tenant × model. */
    AGGREGATOR_DP_BUDGET_EPSILON: positiveNumber(10),
    AGGREGATOR_DP_BUDGET_DELTA: z.coerce.number().gt(0).lt(1).default(1e-5),
    /** How often open rounds are checked for quorum + grace and deadline. */
    AGGREGATOR_TICK_MS: positiveInt(250),
    /**
     * Fault injection for the crash tests only: the process SIGKILLs itself at this point of a round (after half
     * the quorum is stored, halfway through aggregating, or after the result is stored and before it is published).
     */
    AGGREGATOR_FAULT_KILL_AT: z.enum(['intake-half', 'aggregation-half', 'result-stored']).optional(),
  },
  mapOwn: (env, base) => {
    const dir = env.AGGREGATOR_ARTIFACT_DIR;
    return {
      adminToken: env.AGGREGATOR_ADMIN_TOKEN as string | undefined,
      registryUrl: env.AGGREGATOR_REGISTRY_URL,
      registryToken: env.AGGREGATOR_REGISTRY_TOKEN,
      inlineMaxBytes: env.AGGREGATOR_INLINE_MAX_BYTES,
      artifactDir:
        dir === undefined ? join(base.dataDir, 'round-results') : isAbsolute(dir) ? dir : resolve(dir),
      maxHeldUpdates: env.AGGREGATOR_MAX_HELD_UPDATES,
      dpBudget: { epsilon: env.AGGREGATOR_DP_BUDGET_EPSILON, delta: env.AGGREGATOR_DP_BUDGET_DELTA },
      tickMs: env.AGGREGATOR_TICK_MS,
      faultKillAt: env.AGGREGATOR_FAULT_KILL_AT,
      storePath: join(base.dataDir, 'aggregator.sqlite'),
    };
  },
});

export type AggregatorConfig = ReturnType<typeof aggregatorConfig.load>;
