import type { OpenApiOptions } from '@edgefl/service-kit';

/** The inference's OpenAPI document (served by the kit at /openapi.json; its paths come from the controllers). */
export const inferenceOpenApi: OpenApiOptions = {
  title: 'edgefl inference',
  description:
    'The cloud inference tier: models served by the Open Inference Protocol (KServe/Triton v2), A/B and shadow deployments, escalations from devices. ' +
    'Errors are application/problem+json (RFC 9457).',
};
