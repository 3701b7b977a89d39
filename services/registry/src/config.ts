import { defineServiceConfig } from '@edgefl/service-kit';

/** The registry's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const registryConfig = defineServiceConfig({
  service: 'registry',
  defaultPort: 7104,
  ownShape: {},
  mapOwn: () => ({}),
});

export type RegistryConfig = ReturnType<typeof registryConfig.load>;
