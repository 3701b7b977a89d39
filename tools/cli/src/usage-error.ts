/** Bad input on the command line or in a file it names: the CLI prints the message in one line and exits with 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A secure-aggregation round aborted below its threshold: the CLI prints the reason in one line and exits with 3. */
export class RoundAbortedError extends Error {
  override readonly name = 'RoundAbortedError';
}
