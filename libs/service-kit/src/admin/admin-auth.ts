import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import {
  applyDecorators,
  Global,
  Inject,
  Injectable,
  Module,
  UseGuards,
  type DynamicModule,
  type CanActivate,
  type ExecutionContext,
  type OnModuleInit,
} from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { UnauthorizedError } from '../errors/domain-errors.js';
import { LOGGER } from '../tokens.js';

/** Name of the bearer security scheme of the management API in the OpenAPI document. */
export const ADMIN_SECURITY = 'admin';

/** How a service's management API is guarded. */
export interface AdminAuthOptions {
  /** The configured token (a secret: never echoed or logged), or undefined to use a generated one. */
  token: string | undefined;
  /** The service's data directory, where a generated token is kept. */
  dataDir: string;
  /** File under the data dir holding the generated token, e.g. `registry-admin-token`. */
  tokenFile: string;
  /** The variable that sets the token, named in the log line when it is not set, e.g. `REGISTRY_ADMIN_TOKEN`. */
  envName: string;
  /** The realm of `WWW-Authenticate: Bearer`, e.g. `edgefl-registry-admin`. */
  realm: string;
}

export const ADMIN_AUTH_OPTIONS = Symbol.for('edgefl.admin-auth-options');

const BEARER = /^Bearer[ ]+([\x21-\x7e]+)[ ]*$/i;

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * The management API's bearer token: the configured one (e.g. REGISTRY_ADMIN_TOKEN), or, when unset, a random token
 * generated at first boot and kept 0600 in `<data dir>/<tokenFile>` (later boots read it; only the file's path is
 * logged). Only a SHA-256 digest is held in memory for comparison.
 */
@Injectable()
export class AdminToken implements OnModuleInit {
  private expected: Buffer | null = null;
  /** Where the generated token lives (null when it came from the environment). */
  path: string | null = null;

  constructor(
    @Inject(ADMIN_AUTH_OPTIONS) private readonly options: AdminAuthOptions,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async onModuleInit(): Promise<void> {
    const configured = this.options.token;
    if (configured !== undefined) {
      this.expected = digest(configured);
      return;
    }
    const path = join(this.options.dataDir, this.options.tokenFile);
    let token: string;
    try {
      token = (await readFile(path, 'utf8')).trim();
      if (token.length < 16) throw new Error(`the admin token in ${path} is too short; remove the file`);
      await chmod(path, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      token = randomBytes(32).toString('base64url');
      await mkdir(this.options.dataDir, { recursive: true });
      try {
        // 'wx': a replica booting at the same time on the same volume keeps the first token written
        await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
        this.logger.warn(
          { path },
          `${this.options.envName} is not set: generated an admin token for the management API; read it from this file`,
        );
      } catch (raced) {
        if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced;
        token = (await readFile(path, 'utf8')).trim();
      }
    }
    this.path = path;
    this.expected = digest(token);
  }

  /** Whether an `Authorization` header carries this token as `Bearer <token>` (for routes open to others too). */
  authorizes(header: string | undefined): boolean {
    const match = BEARER.exec(header ?? '');
    return match !== null && this.matches(match[1]!);
  }

  /** Constant-time check of a presented token (both sides hashed first, so lengths leak nothing either). */
  matches(presented: string): boolean {
    if (this.expected === null) return false;
    return timingSafeEqual(digest(presented), this.expected);
  }
}

/** Management routes need `Authorization: Bearer <admin token>`; otherwise 401 problem+json, WWW-Authenticate. */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  constructor(
    private readonly token: AdminToken,
    @Inject(ADMIN_AUTH_OPTIONS) private readonly options: AdminAuthOptions,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const match = BEARER.exec(req.headers.authorization ?? '');
    if (match && this.token.matches(match[1]!)) return true;
    const res = http.getResponse<Response>();
    res.setHeader(
      'WWW-Authenticate',
      match
        ? `Bearer realm="${this.options.realm}", error="invalid_token"`
        : `Bearer realm="${this.options.realm}"`,
    );
    throw new UnauthorizedError(
      match
        ? 'the admin token is not valid'
        : 'the management API needs the admin token (Authorization: Bearer <token>)',
    );
  }
}

/** Marks a controller or route as part of the management API (admin bearer token; documented in OpenAPI). */
export const AdminOnly = () =>
  applyDecorators(
    UseGuards(AdminAuthGuard),
    ApiBearerAuth(ADMIN_SECURITY),
    ApiUnauthorizedResponse({
      description: 'no or a wrong admin token (problem+json, WWW-Authenticate: Bearer)',
    }),
  );

/** The admin token and guard for `@AdminOnly()` routes anywhere in the app. */
@Global()
@Module({})
export class AdminAuthModule {
  static forRoot(options: AdminAuthOptions): DynamicModule {
    return {
      module: AdminAuthModule,
      providers: [{ provide: ADMIN_AUTH_OPTIONS, useValue: options }, AdminToken, AdminAuthGuard],
      exports: [ADMIN_AUTH_OPTIONS, AdminToken, AdminAuthGuard],
    };
  }
}
