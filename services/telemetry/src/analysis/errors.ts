// The one error the pure analysis functions throw on bad input: a stable code (the metric label callers count it
// under) and a message naming the argument, never the values.

export type AnalysisErrorCode =
  /** Two distributions of different lengths, or bins that do not match their edges. */
  | 'LENGTH_MISMATCH'
  /** No bins, no values, or counts that sum to zero. */
  | 'EMPTY'
  /** NaN, ±Infinity or a negative count where a count or a value is expected. */
  | 'NOT_FINITE'
  /** Bin edges that are not strictly increasing finite numbers, or too few of them. */
  | 'BAD_EDGES'
  /** An option outside its range (epsilon, bins, a ratio outside [0, 1]). */
  | 'BAD_OPTION'
  /** Two feature summaries of different features. */
  | 'FEATURE_MISMATCH'
  /** An SLO objective whose target or window is out of range. */
  | 'BAD_OBJECTIVE';

export class AnalysisError extends Error {
  override readonly name = 'AnalysisError';
  readonly code: AnalysisErrorCode;
  constructor(code: AnalysisErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
