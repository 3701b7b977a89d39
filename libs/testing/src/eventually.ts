/**
 * Polls `check` until it returns a value other than `undefined` or `false`, and returns that value; fails naming
 * `what` once `timeoutMs` has passed. The one polling helper of the tree: the limit is only an upper bound for
 * something that must happen, never a timing assertion (make it generous: CI machines are shared and loaded).
 */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
