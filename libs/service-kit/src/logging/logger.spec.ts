import { describe, expect, it } from 'vitest';
import { createLogger, JsonLogger } from './logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe('JSON logger', () => {
  it('writes one JSON object a line with level, service and message', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'gateway', level: 'info', destination }).info({ round: 'r1' }, 'round opened');
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 'info', service: 'gateway', round: 'r1', msg: 'round opened' });
    expect(typeof record['time']).toBe('string');
  });

  it('redacts secret fields by name, at any of the usual depths', () => {
    const { lines, destination } = capture();
    createLogger({ service: 's', level: 'info', destination }).info(
      { token: 'abc', config: { keys: { token: 'def' } }, req: { headers: { authorization: 'Bearer ghi' } } },
      'x',
    );
    expect(lines[0]).not.toMatch(/abc|def|ghi/);
    expect(lines[0]).toContain('[REDACTED]');
  });

  it('scrubs configured secret values wherever they appear, even in messages and stacks', () => {
    const { lines, destination } = capture();
    const logger = createLogger({
      service: 's',
      level: 'info',
      secrets: ['s3cr3t-vault-token'],
      destination,
    });
    logger.error(
      { err: new Error('vault refused s3cr3t-vault-token') },
      'call with s3cr3t-vault-token failed',
    );
    expect(lines.join('')).not.toContain('s3cr3t-vault-token');
    expect(lines[0]).toContain('[REDACTED]');
  });

  it('adapts NestJS logs (context, errors) to the same lines', () => {
    const { lines, destination } = capture();
    const nest = new JsonLogger(createLogger({ service: 's', level: 'debug', destination }));
    nest.log('Mapped {/health, GET} route', 'RouterExplorer');
    nest.error('boom', 'Error: boom\n    at x', 'ExceptionsHandler');
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      context: 'RouterExplorer',
      msg: 'Mapped {/health, GET} route',
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({
      level: 'error',
      context: 'ExceptionsHandler',
      stack: 'Error: boom\n    at x',
    });
  });
});
