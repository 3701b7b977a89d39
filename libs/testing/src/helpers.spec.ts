import { createServer, type IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { codeOf, thrownBy } from './error-code.js';
import { eventually } from './eventually.js';
import { expectProblem, httpClient } from './http.js';
import { freePort } from './ports.js';

class CodedError extends Error {
  constructor(readonly code: 'BAD' | 'WORSE') {
    super(`failed: ${code}`);
  }
}

describe('eventually', () => {
  it('returns the first value that is neither undefined nor false, polling sync and async checks', async () => {
    let calls = 0;
    expect(await eventually('the third call', () => (++calls >= 3 ? calls : false), 5_000, 1)).toBe(3);
    expect(await eventually('zero', async () => 0)).toBe(0);
    expect(await eventually('null', () => null)).toBeNull();
  });

  it('fails naming what it waited for once the limit passes', async () => {
    await expect(eventually('the impossible', () => false, 30, 5)).rejects.toThrow(
      /timed out after 30 ms waiting for the impossible/,
    );
  });
});

describe('codeOf / thrownBy', () => {
  it('gives the code of a synchronous throw without a promise', () => {
    expect(
      codeOf(CodedError, () => {
        throw new CodedError('BAD');
      }),
    ).toBe('BAD');
    expect(codeOf(CodedError, () => 42)).toBe('no error');
    expect(
      codeOf(CodedError, () => {
        throw new TypeError('nope');
      }),
    ).toBe('not a CodedError: TypeError: nope');
  });

  it('gives the code of a rejected promise or async function, and the error itself', async () => {
    expect(await codeOf(CodedError, Promise.reject(new CodedError('WORSE')))).toBe('WORSE');
    expect(await codeOf(CodedError, async () => 'fine')).toBe('no error');
    const thrown = await thrownBy(CodedError, Promise.reject(new CodedError('BAD')));
    expect('error' in thrown && (thrown.error as Error).message).toBe('failed: BAD');
    expect(await thrownBy(CodedError, Promise.reject(new Error('x')))).toMatchObject({
      code: 'not a CodedError: Error: x',
    });
  });
});

describe('httpClient / expectProblem', () => {
  it('sends JSON with default headers a call can replace or drop, and reads problems', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        res.statusCode = 409;
        res.setHeader('content-type', 'application/problem+json');
        res.end(JSON.stringify({ type: 'urn:x', title: 'Conflict', status: 409, detail: body }));
      });
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      const call = httpClient({ authorization: 'Bearer default' });
      const base = `http://127.0.0.1:${port}`;
      const answer = await call(base, 'POST', '/x', { a: 1 });
      expect(expectProblem(answer, 409, 'urn:x').detail).toBe('{"a":1}');
      await call(base, 'GET', '/x', undefined, { authorization: 'Bearer other' });
      await call(base, 'GET', '/x', undefined, { authorization: '' });
      expect(seen.map((h) => h.authorization)).toEqual(['Bearer default', 'Bearer other', undefined]);
      expect(seen[0]!['content-type']).toBe('application/json');
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
