import { defineServiceConfig } from '@edgefl/service-kit';

/** The telemetry's configuration: the shared variables (bus, keys, stores, HTTP) and its own. Validated at boot. */
export const telemetryConfig = defineServiceConfig({
  service: 'telemetry',
  defaultPort: 7105,
  ownShape: {},
  mapOwn: () => ({}),
});

export type TelemetryConfig = ReturnType<typeof telemetryConfig.load>;
