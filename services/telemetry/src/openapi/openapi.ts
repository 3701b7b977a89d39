import type { OpenApiOptions } from '@edgefl/service-kit';

/** The telemetry's OpenAPI document (served by the kit at /openapi.json; its paths come from the controllers). */
export const telemetryOpenApi: OpenApiOptions = {
  title: 'edgefl telemetry',
  description:
    'Service-level indicators from inference logs, heartbeats and OTA statuses; drift; the rollout-health windows that drive release gates. ' +
    'Errors are application/problem+json (RFC 9457).',
};
