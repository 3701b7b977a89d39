import { defineServiceConfig } from '@edgefl/service-kit';

/** The inference's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const inferenceConfig = defineServiceConfig({
  service: 'inference',
  defaultPort: 7102,
  ownShape: {},
  mapOwn: () => ({}),
});

export type InferenceConfig = ReturnType<typeof inferenceConfig.load>;
