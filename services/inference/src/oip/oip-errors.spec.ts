import type { ArgumentsHost } from '@nestjs/common';
import { BadRequestError } from '@edgefl/service-kit';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { InferError, type InferErrorCode } from '../serving/errors.js';
import { OipErrorFilter } from './oip-errors.js';

/** An express-like response that records what the filter sends. */
function answer(exception: unknown) {
  const sent: { status?: number; type?: string; body?: string; headers: Record<string, string> } = {
    headers: {},
  };
  const res = {
    headersSent: false,
    setHeader: (name: string, value: string) => (sent.headers[name.toLowerCase()] = value),
    status(code: number) {
      sent.status = code;
      return this;
    },
    type(value: string) {
      sent.type = value;
      return this;
    },
    send(body: string) {
      sent.body = body;
      return this;
    },
  };
  const host = {
    switchToHttp: () => ({
      getResponse: () => res,
      getRequest: () => ({ originalUrl: '/v2/models/fraud/infer' }),
    }),
  } as unknown as ArgumentsHost;
  new OipErrorFilter(pino({ level: 'silent' })).catch(exception, host);
  return { ...sent, problem: JSON.parse(sent.body!) as Record<string, unknown> };
}

describe('OipErrorFilter', () => {
  it.each([
    ['bad-input', 400],
    ['unauthenticated', 401],
    ['not-found', 404],
    ['too-large', 413],
    ['overloaded', 429],
    ['unavailable', 503],
    ['internal', 500],
  ] as Array<[InferErrorCode, number]>)(
    '%s → %i, problem+json with the protocol error member',
    (code, status) => {
      const sent = answer(new InferError(code, `because ${code}`));
      expect(sent.status).toBe(status);
      expect(sent.type).toBe('application/problem+json');
      expect(sent.problem).toMatchObject({
        status,
        detail: `because ${code}`,
        error: `because ${code}`,
        reason: code,
      });
      if (code === 'overloaded') expect(sent.headers['retry-after']).toBe('1');
      if (code === 'unauthenticated') expect(sent.headers['www-authenticate']).toMatch(/^Bearer/);
    },
  );

  it('adds the error member to the kit’s own problems too', () => {
    const sent = answer(new BadRequestError('not an object'));
    expect(sent.status).toBe(400);
    expect(sent.problem).toMatchObject({ detail: 'not an object', error: 'not an object' });
  });
});
