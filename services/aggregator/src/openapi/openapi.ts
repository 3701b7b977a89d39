import type { OpenApiOptions } from '@edgefl/service-kit';

/** The aggregator's OpenAPI document (served by the kit at /openapi.json; its paths come from the controllers). */
export const aggregatorOpenApi: OpenApiOptions = {
  title: 'edgefl aggregator',
  description:
    'Federated learning rounds: selection, quorum and deadline, secure and robust aggregation, differential privacy and its budget. ' +
    'Errors are application/problem+json (RFC 9457).',
};
