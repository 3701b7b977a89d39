import { ADMIN_SECURITY, type OpenApiOptions } from '@edgefl/service-kit';

/** File under the data dir holding the generated admin token when INFERENCE_ADMIN_TOKEN is not set. */
export const ADMIN_TOKEN_FILE = 'inference-admin-token';

/** The inference's OpenAPI document (served by the kit at /openapi.json; its paths come from the controllers). */
export const inferenceOpenApi: OpenApiOptions = {
  title: 'edgefl inference',
  description:
    'The cloud inference tier: models served by the Open Inference Protocol (KServe/Triton v2), A/B and shadow deployments, escalations from devices. ' +
    "Errors are application/problem+json (RFC 9457); on /v2 routes they also carry the protocol's `error` member.",
  configure: (builder) =>
    builder
      .addBearerAuth(
        {
          type: 'http',
          scheme: 'bearer',
          description: `The management API token (INFERENCE_ADMIN_TOKEN, or the one generated into <data dir>/${ADMIN_TOKEN_FILE})`,
        },
        ADMIN_SECURITY,
      )
      .addBearerAuth(
        { type: 'http', scheme: 'bearer', description: 'A tenant token (INFERENCE_TENANT_TOKENS)' },
        'bearer',
      ),
};
