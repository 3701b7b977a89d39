import { Controller, Get, type INestApplication } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
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
