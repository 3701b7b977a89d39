import { ADMIN_SECURITY, type OpenApiOptions } from '@edgefl/service-kit';

/** File under the data dir holding the generated admin token when AGGREGATOR_ADMIN_TOKEN is not set. */
export const ADMIN_TOKEN_FILE = 'aggregator-admin-token';

/** The aggregator's OpenAPI document (served by the kit at /openapi.json; its paths come from the controllers). */
export const aggregatorOpenApi: OpenApiOptions = {
  title: 'edgefl aggregator',
  description:
    'Federated learning rounds: selection, quorum and deadline, secure and robust aggregation, differential privacy and its budget. ' +
    'Errors are application/problem+json (RFC 9457).',
  configure: (builder) =>
    builder.addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description: `The rounds API token (AGGREGATOR_ADMIN_TOKEN, or the one generated into <data dir>/${ADMIN_TOKEN_FILE})`,
      },
      ADMIN_SECURITY,
    ),
};
