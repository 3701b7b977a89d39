import { ADMIN_SECURITY, type OpenApiOptions } from '@edgefl/service-kit';

/** File under the data dir holding the generated admin token when REGISTRY_ADMIN_TOKEN is not set. */
export const ADMIN_TOKEN_FILE = 'registry-admin-token';

/** The registry's OpenAPI document (served by the kit at /openapi.json; paths from the controllers). */
export const registryOpenApi: OpenApiOptions = {
  title: 'edgefl registry',
  description:
    'Tenants, models, versions and artifacts (Range + ETag), deltas, device registry and tokens, signed manifests, ' +
    'releases with staged rollouts behind health gates. Errors are application/problem+json (RFC 9457).',
  configure: (builder) =>
    builder
      .addBearerAuth(
        {
          type: 'http',
          scheme: 'bearer',
          description: `The management API token (REGISTRY_ADMIN_TOKEN, or the one generated into <data dir>/${ADMIN_TOKEN_FILE})`,
        },
        ADMIN_SECURITY,
      )
      .addBearerAuth(
        {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'The device token from POST /v1/devices/{device}/token (needed unless REGISTRY_DEVICE_AUTH=off)',
        },
        'bearer',
      ),
};
