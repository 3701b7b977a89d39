import { defineServiceConfig } from '@edgefl/service-kit';

/** The aggregator's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const aggregatorConfig = defineServiceConfig({
  service: 'aggregator',
  defaultPort: 7103,
  ownShape: {},
  mapOwn: () => ({}),
});

export type AggregatorConfig = ReturnType<typeof aggregatorConfig.load>;
