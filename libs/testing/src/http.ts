import { expect } from 'vitest';

/** An HTTP answer as e2e tests read it: status, content type, the body (parsed when it is JSON), headers. */
export interface Answer<T = unknown> {
  status: number;
  type: string;
  body: T;
  headers: Headers;
}

/** `call(base, method, path, body?, headers?)`: one JSON request; see `httpClient`. */
export type Call = <T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<Answer<T>>;

/**
 * A JSON request function with default headers (e.g. a service's admin token). A header passed to a call replaces
 * the default of the same name; an empty value sends none (a request without the token). A string body is sent as
 * it is (malformed JSON on purpose), anything else as JSON.
 */
export function httpClient(defaults: Record<string, string> = {}): Call {
  return async <T>(base: string, method: string, path: string, body?: unknown, headers = {}) => {
    const merged: Record<string, string> = {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...defaults,
      ...headers,
    };
    const res = await fetch(`${base}${path}`, {
      method,
      headers: Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== '')),
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const type = res.headers.get('content-type') ?? '';
    const text = await res.text();
    return {
      status: res.status,
      type,
      body: (type.includes('json') && text ? JSON.parse(text) : text) as T,
      headers: res.headers,
    };
  };
}

/** A JSON request without default headers. */
export const call: Call = httpClient();

/** RFC 9457 problem details as a client reads them. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

/**
 * The one way to expect an HTTP error: the status, `application/problem+json`, and a body whose `status` agrees
 * (and whose `type` is `type`, when given). Returns the problem for further checks.
 */
export function expectProblem(
  answer: Pick<Answer, 'status' | 'type' | 'body'>,
  status: number,
  type?: string,
): ProblemBody {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.type).toMatch(/^application\/problem\+json/);
  expect(answer.body).toMatchObject({ status, ...(type !== undefined ? { type } : {}) });
  return answer.body as ProblemBody;
}
