import { ADMIN_SECURITY, type OpenApiOptions } from '@edgefl/service-kit';

/** File under the data dir holding the generated admin token when TELEMETRY_ADMIN_TOKEN is not set. */
export const ADMIN_TOKEN_FILE = 'telemetry-admin-token';

/** The telemetry's OpenAPI document (served by the kit at /openapi.json; paths from the controllers). */
export const telemetryOpenApi: OpenApiOptions = {
  title: 'edgefl telemetry',
  description:
    'Fleet SLIs per tenant × model × version × device group over sliding windows, device freshness, OTA outcomes, ' +
    'rollout health (canary vs baseline), rounds and privacy spent, drift and SLO burn-rate alerts. Errors are ' +
    'application/problem+json (RFC 9457).',
  configure: (builder) =>
    builder.addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description: `The API token (TELEMETRY_ADMIN_TOKEN, or the one generated into <data dir>/${ADMIN_TOKEN_FILE})`,
      },
      ADMIN_SECURITY,
    ),
};
