import type { LoggerService } from '@nestjs/common';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/service-config.js';

/** Field names whose values never reach a log line, wherever they appear (pino's fast-redact paths). */
export const REDACTED_PATHS = [
  'password',
  'token',
  'secret',
  'privateKey',
  'authorization',
  'apiKey',
  '*.password',
  '*.token',
  '*.secret',
  '*.privateKey',
  '*.authorization',
  '*.apiKey',
  '*.headers.authorization',
  '*.*.password',
  '*.*.token',
  '*.*.secret',
  '*.*.privateKey',
  'req.headers.authorization',
  'config.keys.token',
  'config.bus.sasl.password',
  'config.databaseUrl',
];

export interface LoggerOptions {
  service: string;
  level: LogLevel;
  /** Secret values (from config) scrubbed from every line, even inside messages and error stacks. */
  secrets?: string[];
  destination?: DestinationStream;
}

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Structured JSON logs (one object a line) with secrets redacted by field name and by value. */
export function createLogger(options: LoggerOptions): Logger {
  const secrets = (options.secrets ?? []).filter((s) => s.length >= 4);
  // JSON-escaped forms too, so a secret inside a serialised string is still caught.
  const patterns = secrets.flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]).map(escapeRegExp);
  const scrub = patterns.length > 0 ? new RegExp(patterns.join('|'), 'g') : null;
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
      hooks: scrub ? { streamWrite: (line) => line.replace(scrub, '[REDACTED]') } : {},
    },
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** NestJS's LoggerService on top of pino, so framework logs come out as the same JSON lines. */
export class JsonLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(
    level: 'info' | 'error' | 'warn' | 'debug' | 'trace' | 'fatal',
    message: unknown,
    params: unknown[],
  ) {
    // Nest passes the context (class name) last, and for errors a stack before it.
    const context = typeof params.at(-1) === 'string' ? (params.at(-1) as string) : undefined;
    const stack = params.length >= 2 && typeof params[0] === 'string' ? (params[0] as string) : undefined;
    const fields: Record<string, unknown> = {};
    if (context) fields['context'] = context;
    if (stack) fields['stack'] = stack;
    if (message instanceof Error) this.logger[level]({ ...fields, err: message }, message.message);
    else if (typeof message === 'object' && message !== null) this.logger[level]({ ...fields, ...message });
    else this.logger[level](fields, String(message));
  }
}
