import 'reflect-metadata';
import { isUtf8 } from 'node:buffer';
import express from 'express';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DynamicModule, INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { ConfigError } from './config/config.js';
import type { BaseConfig } from './config/service-config.js';
import { JsonLogger } from './logging/logger.js';
import { deferBodyError } from './http/validation.js';

export interface RunningService {
  name: string;
  app: INestApplication;
  /** Base URL of the HTTP listener, e.g. http://127.0.0.1:7101 */
  url: string;
  close(): Promise<void>;
}

/**
 * Creates and starts one service: JSON logs, shutdown hooks for an orderly drain, the HTTP listener on the
 * configured host and port. Resolves once the app listens; readiness (/health/ready) follows its adapters.
 */
export async function startService(options: {
  config: BaseConfig;
  logger: Logger;
  module: DynamicModule;
  /** Off when several services share one process (the launcher handles signals once for all). */
  shutdownHooks?: boolean;
  bodyLimit?: string;
}): Promise<RunningService> {
  const { config, logger } = options;
  // the embedded stack's files (bus log, keyring, stores) live here; a fresh machine has no such folder yet
  await mkdir(config.dataDir, { recursive: true });
  if (config.bus.adapter === 'embedded') await mkdir(dirname(config.bus.path), { recursive: true });
  const app = await NestFactory.create<NestExpressApplication>(options.module, {
    logger: new JsonLogger(logger),
    bufferLogs: false,
    abortOnError: false,
    rawBody: false,
    bodyParser: false,
  });
  // no `X-Powered-By: Express`: it tells a caller nothing it needs and an attacker what to try
  app.disable('x-powered-by');
  // express.json itself rather than useBodyParser, which reserves `verify` (the UTF-8 check) for Nest's rawBody
  const json = express.json({ limit: options.bodyLimit ?? '1mb', verify: requireUtf8, reviver: wellFormed });
  // a refused body is raised by the route that reads it, after its guards ran (jsonBodyOf), so an anonymous caller of
  // a guarded route gets 401 and learns nothing from the parser
  app.use((req: Request, res: Response, next: NextFunction) =>
    json(req, res, (error?: unknown) => {
      if (error !== undefined) deferBodyError(req, error);
      next();
    }),
  );
  if (options.shutdownHooks ?? true) app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  await app.listen(config.http.port, config.http.host);
  const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.http.port}`;
  logger.info({ url, bus: config.bus.adapter, keys: config.keys.kind }, 'listening');
  return { name: config.service, app, url, close: () => app.close() };
}

/** JSON bodies must be UTF-8 (RFC 8259 §8.1): invalid bytes are refused (400), not decoded to U+FFFD. */
function requireUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  if (!isUtf8(body))
    throw Object.assign(new Error('the request body is not valid UTF-8'), {
      status: 400,
      type: 'entity.parse.failed',
    });
}

/**
 * A JSON escape can still name a lone surrogate (`"\ud800"`), which no UTF-8 store or Avro reader can hold: refused
 * while parsing (body-parser answers 400), in strings and in member names alike.
 */
function wellFormed(key: string, value: unknown): unknown {
  if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed()))
    throw new SyntaxError('the JSON body holds a string that is not well-formed Unicode (lone surrogate)');
  return value;
}

/** For `main.ts`: a config error is one line on stderr and exit code 1; anything else logs its stack. */
export function exitOnBootError(service: string): (error: unknown) => never {
  return (error: unknown) => {
    if (error instanceof ConfigError) process.stderr.write(`edgefl-${service}: ${error.message}\n`);
    else
      process.stderr.write(
        `edgefl-${service}: failed to start: ${(error as Error).stack ?? String(error)}\n`,
      );
    process.exit(1);
  };
}
