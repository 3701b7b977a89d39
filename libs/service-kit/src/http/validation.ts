// Request validation with zod for NestJS controllers: one schema validates a body, path or query parameter and
// documents it in OpenAPI. Failures are domain errors (400 malformed, 422 against the rules) for the kit's filter.
import {
  applyDecorators,
  createParamDecorator,
  Injectable,
  Param,
  Query,
  type ExecutionContext,
  type PipeTransform,
} from '@nestjs/common';
import type { Request } from 'express';
import { ApiBody, ApiParam, ApiQuery } from '@nestjs/swagger';
import { z } from 'zod';
import { BadRequestError, UnprocessableError } from '../errors/domain-errors.js';

/** Identifiers of tenants, models, devices and releases: path-safe, key-name-safe. */
export const Id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, '1-64 characters of [A-Za-z0-9_.-]');

function issues(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
}

/** Validates a JSON body with zod: a body that is not an object → 400, a well-formed one that breaks the rules → 422. */
@Injectable()
export class ZodBodyPipe<T> implements PipeTransform<unknown, T> {
  constructor(private readonly schema: z.ZodType<T>) {}
  transform(value: unknown): T {
    if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new BadRequestError('the request body must be a JSON object (Content-Type: application/json)');
    }
    const result = this.schema.safeParse(value);
    if (!result.success) {
      const list = issues(result.error);
      throw new UnprocessableError(list.map((i) => `${i.path}: ${i.message}`).join('; '), { errors: list });
    }
    return result.data;
  }
}

/** Validates a path or query parameter with zod (400 on failure). */
@Injectable()
export class ZodParamPipe<T> implements PipeTransform<unknown, T> {
  constructor(
    private readonly schema: z.ZodType<T>,
    private readonly name: string,
  ) {}
  transform(value: unknown): T {
    const result = this.schema.safeParse(value);
    if (!result.success) {
      throw new BadRequestError(`${this.name}: ${result.error.issues.map((i) => i.message).join('; ')}`);
    }
    return result.data;
  }
}

/** The OpenAPI (JSON Schema) form of a zod schema: one source of truth for validation and documentation. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  delete json['$schema'];
  return json;
}

const BODY_ERROR = Symbol.for('edgefl.body-error');

/** Keeps the JSON parser's refusal of a body on its request, to be raised by whoever reads the body (jsonBodyOf). */
export function deferBodyError(req: Request, error: unknown): void {
  (req as Request & { [BODY_ERROR]?: unknown })[BODY_ERROR] = error;
}

/**
 * The request's JSON body, or the parser's refusal of it (400: not UTF-8, a lone surrogate, bad JSON). Read only by
 * a route that takes a body, once its guards passed: an anonymous caller of a guarded route gets 401 and learns
 * nothing from the parser. (A param decorator, not a global interceptor: Nest's interceptor chain cost about 30 us
 * per request on every route, a third of a manifest request.)
 */
export function jsonBodyOf(req: Request): unknown {
  const error = (req as Request & { [BODY_ERROR]?: unknown })[BODY_ERROR];
  if (error !== undefined) throw error;
  return req.body as unknown;
}

const CheckedBody = createParamDecorator((_data: unknown, ctx: ExecutionContext) =>
  jsonBodyOf(ctx.switchToHttp().getRequest<Request>()),
);

/** `@JsonBody() body: unknown` — the JSON body unvalidated (lint forbids Nest's own `@Body`, which would miss a refusal). */
export const JsonBody = (): ParameterDecorator => CheckedBody();

/** `@ValidBody(schema) body: T` — validated and documented. */
export function ValidBody<T>(schema: z.ZodType<T>): ParameterDecorator {
  return CheckedBody(undefined, new ZodBodyPipe(schema));
}

/** Method decorator documenting the JSON body of a route from its zod schema. */
export function DocBody(schema: z.ZodType, description?: string): MethodDecorator {
  return applyDecorators(
    ApiBody({ schema: openApiSchema(schema) as never, ...(description ? { description } : {}) }),
  );
}

export const IdParam = (name: string): ParameterDecorator => Param(name, new ZodParamPipe(Id, name));

export function ValidQuery<T>(name: string, schema: z.ZodType<T>): ParameterDecorator {
  return Query(name, new ZodParamPipe(schema, name));
}

export const DocIdParams = (...names: string[]): MethodDecorator =>
  applyDecorators(...names.map((name) => ApiParam({ name, schema: openApiSchema(Id) as never })));

export const DocQuery = (name: string, schema: z.ZodType, required = false): MethodDecorator =>
  applyDecorators(ApiQuery({ name, required, schema: openApiSchema(schema) as never }));
