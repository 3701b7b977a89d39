import { createHash, timingSafeEqual } from 'node:crypto';
import {
  createParamDecorator,
  Inject,
  Injectable,
  type CanActivate,
  type ExecutionContext,
} from '@nestjs/common';
import type { Request } from 'express';
import type { InferenceConfig } from '../config.js';
import { InferError } from '../serving/errors.js';
import { INFERENCE_CONFIG } from '../tokens.js';

const BEARER = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i;
const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Which tenant a direct API caller is: the bearer token (INFERENCE_TENANT_TOKENS) names it. Tokens are compared
 * as SHA-256 digests in constant time; only digests are held. A caller reaches only its tenant's models.
 */
@Injectable()
export class TenantAuth {
  readonly #tokens: Array<{ digest: Buffer; tenant: string }>;

  constructor(@Inject(INFERENCE_CONFIG) config: InferenceConfig) {
    this.#tokens = [...config.own.tenantTokens].map(([token, tenant]) => ({ digest: digest(token), tenant }));
  }

  /** The tenant of an `Authorization` header (HTTP header or gRPC metadata). */
  tenantOf(authorization: string | undefined): string {
    const match = BEARER.exec(authorization ?? '');
    if (!match)
      throw new InferError('unauthenticated', 'a tenant token is required (Authorization: Bearer <token>)');
    const presented = digest(match[1]!);
    let tenant: string | null = null;
    for (const t of this.#tokens) if (timingSafeEqual(presented, t.digest)) tenant = t.tenant;
    if (tenant === null) throw new InferError('unauthenticated', 'the tenant token is not valid');
    return tenant;
  }
}

/** Where the guard leaves the caller's tenant on the request. */
const TENANT = Symbol.for('edgefl.inference.tenant');

/**
 * Model routes need a tenant token: checked before the body is read (a body error is reported only after the
 * guard passed), so an anonymous caller gets 401 and learns nothing from the parser.
 */
@Injectable()
export class TenantGuard implements CanActivate {
  constructor(private readonly auth: TenantAuth) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<Request & { [TENANT]?: string }>();
    req[TENANT] = this.auth.tenantOf(req.headers.authorization);
    return true;
  }
}

/** The tenant TenantGuard authenticated. */
export const Tenant = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const tenant = context.switchToHttp().getRequest<Request & { [TENANT]?: string }>()[TENANT];
  if (tenant === undefined) throw new InferError('unauthenticated', 'no tenant was authenticated');
  return tenant;
});
