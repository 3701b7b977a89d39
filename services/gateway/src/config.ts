import { defineServiceConfig } from '@edgefl/service-kit';

/** The gateway's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const gatewayConfig = defineServiceConfig({
  service: 'gateway',
  defaultPort: 7101,
  ownShape: {},
  mapOwn: () => ({}),
});

export type GatewayConfig = ReturnType<typeof gatewayConfig.load>;
