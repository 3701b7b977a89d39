import { DomainError, statusOf } from '@edgefl/service-kit';
import { describe, expect, it } from 'vitest';
import { etagMatches, parseRange } from './range.js';

/** The HTTP status the kit's filter answers a thrown domain error with (0: nothing thrown). */
const status = (fn: () => unknown) => {
  try {
    fn();
    return 0;
  } catch (error) {
    return error instanceof DomainError ? statusOf(error.kind) : -1;
  }
};

describe('Range header parsing', () => {
  it('reads single byte ranges, open-ended and suffix ranges', () => {
    expect(parseRange(undefined, 100)).toEqual({ kind: 'all' });
    expect(parseRange('bytes=0-9', 100)).toEqual({ kind: 'range', start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ kind: 'range', start: 90, end: 99 });
    expect(parseRange('bytes=95-500', 100)).toEqual({ kind: 'range', start: 95, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ kind: 'range', start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ kind: 'range', start: 0, end: 99 });
    expect(parseRange('items=0-1', 100)).toEqual({ kind: 'all' });
  });

  it('answers 416 for malformed or unsatisfiable single ranges and malformed range sets', () => {
    for (const header of [
      'bytes=',
      'bytes=-',
      'bytes=a-b',
      'bytes=5-1',
      'bytes=100-',
      'bytes=0-1,a-b',
      'bytes=0-1,5-2',
      'bytes=0-1,-',
      'garbage',
      'bytes=-0',
    ]) {
      expect(
        status(() => parseRange(header, 100)),
        header,
      ).toBe(416);
    }
  });

  it('answers a well-formed multi-range request with the full representation (RFC 9110 may ignore Range)', () => {
    expect(parseRange('bytes=0-1,5-6', 100)).toEqual({ kind: 'all' });
    expect(parseRange('bytes=0-1, -5, 90-', 100)).toEqual({ kind: 'all' });
    // even when one of the ranges lies past the end: the whole representation satisfies the request
    expect(parseRange('bytes=0-1,500-600', 100)).toEqual({ kind: 'all' });
  });

  it('compares ETags weakly', () => {
    expect(etagMatches('"abc"', '"abc"')).toBe(true);
    expect(etagMatches('W/"abc", "x"', '"abc"')).toBe(true);
    expect(etagMatches('"abd"', '"abc"')).toBe(false);
    expect(etagMatches('*', '"abc"')).toBe(true);
  });
});
