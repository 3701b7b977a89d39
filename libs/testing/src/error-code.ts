/** An error class whose instances carry a machine-readable `code` (KeyError, ContractError, ...). */
export type CodedErrorClass<E extends { code: string }> = abstract new (...args: never[]) => E;

/** What an action did: threw an error of the expected class (its code and the error), threw another, or nothing. */
export type Thrown<E extends { code: string }> =
  { code: 'no error' } | { code: E['code']; error: E } | { code: `not a ${string}`; error: unknown };

function judge<E extends { code: string }>(kind: CodedErrorClass<E>, error: unknown): Thrown<E> {
  if (error instanceof kind) return { code: error.code, error };
  return { code: `not a ${kind.name}: ${String(error)}`, error };
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null)?.then === 'function';

/**
 * Runs an action (a function, or a promise already under way) and says what it threw, judged against the error
 * class a module promises. Synchronous for a function that returns a plain value, a promise otherwise, so a
 * test can assert on the code of a synchronous API without `await`.
 */
export function thrownBy<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: PromiseLike<unknown> | (() => PromiseLike<unknown>),
): Promise<Thrown<E>>;
export function thrownBy<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: () => unknown,
): Thrown<E>;
export function thrownBy<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: PromiseLike<unknown> | (() => unknown),
): Thrown<E> | Promise<Thrown<E>> {
  let result: unknown;
  try {
    result = typeof action === 'function' ? action() : action;
  } catch (error) {
    return judge(kind, error);
  }
  if (!isThenable(result)) return { code: 'no error' };
  return Promise.resolve(result).then(
    (): Thrown<E> => ({ code: 'no error' }),
    (error: unknown) => judge(kind, error),
  );
}

/**
 * The one way to expect an error code: `expect(codeOf(KeyError, () => verify(...))).toBe('BAD_PUBLIC_KEY')`, or
 * `expect(await codeOf(KeyError, keys.sign(...))).toBe('UNKNOWN_KEY')`. Yields the code, `'no error'`, or
 * `'not a <Class>: <error>'` (so a failing assertion shows what was thrown instead).
 */
export function codeOf<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: PromiseLike<unknown> | (() => PromiseLike<unknown>),
): Promise<Thrown<E>['code']>;
export function codeOf<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: () => unknown,
): Thrown<E>['code'];
export function codeOf<E extends { code: string }>(
  kind: CodedErrorClass<E>,
  action: PromiseLike<unknown> | (() => unknown),
): Thrown<E>['code'] | Promise<Thrown<E>['code']> {
  const thrown = thrownBy(kind, action as () => unknown) as Thrown<E> | Promise<Thrown<E>>;
  return thrown instanceof Promise ? thrown.then((t) => t.code) : thrown.code;
}
