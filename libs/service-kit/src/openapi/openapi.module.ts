import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  type DynamicModule,
  type INestApplication,
} from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { ApiExcludeController, DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { NotFoundError } from '../errors/domain-errors.js';

/** What a service says about its HTTP API; the paths come from its controllers' decorators and zod schemas. */
export interface OpenApiOptions {
  title: string;
  description: string;
  version?: string;
  /** Further settings of the document, e.g. its security schemes (`builder.addBearerAuth(...)`). */
  configure?: (builder: DocumentBuilder) => DocumentBuilder;
}

export const OPENAPI_OPTIONS = Symbol.for('edgefl.openapi-options');

/** The OpenAPI document of one running app (one per app: several services may share a process). */
@Injectable()
export class OpenApiDocument {
  private document: OpenAPIObject | null = null;

  constructor(@Inject(OPENAPI_OPTIONS) private readonly options: OpenApiOptions) {}

  /** Builds the document from the app's routes; `serviceEntry` calls it once the app listens. */
  build(app: INestApplication): OpenAPIObject {
    const builder = new DocumentBuilder()
      .setTitle(this.options.title)
      .setDescription(this.options.description)
      .setVersion(this.options.version ?? '1');
    this.document = SwaggerModule.createDocument(app, (this.options.configure?.(builder) ?? builder).build());
    return this.document;
  }

  get current(): OpenAPIObject | null {
    return this.document;
  }
}

@ApiExcludeController()
@Controller()
export class OpenApiController {
  constructor(private readonly openapi: OpenApiDocument) {}

  @Get('openapi.json')
  document(): OpenAPIObject {
    const document = this.openapi.current;
    if (!document) throw new NotFoundError('the OpenAPI document is being built');
    return document;
  }
}

/** Serves the service's OpenAPI 3 document at `GET /openapi.json`. */
@Module({})
export class OpenApiModule {
  static forRoot(options: OpenApiOptions): DynamicModule {
    return {
      module: OpenApiModule,
      controllers: [OpenApiController],
      providers: [{ provide: OPENAPI_OPTIONS, useValue: options }, OpenApiDocument],
      exports: [OpenApiDocument],
    };
  }
}

/** Builds the app's OpenAPI document when it imports OpenApiModule; null when it does not. */
export function buildOpenApi(app: INestApplication): OpenAPIObject | null {
  // looked up in the module graph first: app.get() of a missing provider is caught here, but Nest logs it as an
  // error at every boot of a service that serves no document (the gateway)
  const modules = [...app.get(ModulesContainer).values()];
  if (!modules.some((m) => m.providers.has(OpenApiDocument))) return null;
  return app.get(OpenApiDocument, { strict: false }).build(app);
}
