import { Controller, Get, type INestApplication } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ADMIN_SECURITY } from '../admin/admin-auth.js';
import { problem } from '../http/problems.js';

let document: OpenAPIObject | null = null;

/** Builds the OpenAPI document of the running app (from the controllers' decorators and zod schemas). */
export function buildOpenApi(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('edgefl registry')
    .setDescription(
      'Tenants, models, versions and artifacts (Range + ETag), deltas, device registry and tokens, signed manifests, ' +
        'releases with staged rollouts behind health gates. Errors are application/problem+json (RFC 9457).',
    )
    .setVersion('1')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        description:
          'The management API token (REGISTRY_ADMIN_TOKEN, or the one generated into <data dir>/registry-admin-token)',
      },
      ADMIN_SECURITY,
    )
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description:
          'The device token from POST /v1/devices/{device}/token (needed when REGISTRY_DEVICE_AUTH=required)',
      },
      'bearer',
    )
    .build();
  document = SwaggerModule.createDocument(app, config);
  return document;
}

@ApiExcludeController()
@Controller()
export class OpenApiController {
  @Get('openapi.json')
  openapi(): OpenAPIObject {
    if (!document) throw problem.notFound('the OpenAPI document is being built');
    return document;
  }
}
