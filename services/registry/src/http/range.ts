export type RangeRequest = { kind: 'all' } | { kind: 'range'; start: number; end: number };
import { RangeNotSatisfiableError } from '@edgefl/service-kit';

/**
 * Parses a Range header (RFC 9110 §14) for a representation of `size` bytes. One byte range is served as 206;
 * ranges in another unit, and a well-formed set of several byte ranges, are ignored (the full representation with
 * 200: RFC 9110 §14.2 lets a server ignore a Range it will not serve, and we build no multipart/byteranges); a
 * malformed byte-range set or a single range past the end → 416 problem+json.
 * Written by hand: `range-parser` would add a dependency for ~20 lines and still leave the policy to us.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || header === '') return { kind: 'all' };
  const match = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(.*)$/.exec(header);
  if (!match) throw new RangeNotSatisfiableError(`malformed Range header`, { size });
  if (match[1]!.toLowerCase() !== 'bytes') return { kind: 'all' };
  const specs = match[2]!
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (specs.length === 0) throw new RangeNotSatisfiableError('malformed Range header', { size });
  const specPattern = /^(\d*)-(\d*)$/;
  if (specs.length > 1) {
    // several ranges: served as the whole representation, once every range in the set is well-formed
    for (const s of specs) {
      const m = specPattern.exec(s);
      if (!m || (m[1] === '' && m[2] === '') || (m[1] !== '' && m[2] !== '' && Number(m[2]) < Number(m[1])))
        throw new RangeNotSatisfiableError(`malformed byte range "${s}"`, { size });
    }
    return { kind: 'all' };
  }
  const spec = specPattern.exec(specs[0]!);
  if (!spec || (spec[1] === '' && spec[2] === ''))
    throw new RangeNotSatisfiableError(`malformed byte range "${specs[0]}"`, { size });
  let start: number;
  let end: number;
  if (spec[1] === '') {
    const suffix = Number(spec[2]);
    if (suffix === 0 || size === 0) throw new RangeNotSatisfiableError('an empty suffix range', { size });
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(spec[1]);
    end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1);
    if (!Number.isSafeInteger(start) || (spec[2] !== '' && Number(spec[2]) < start)) {
      throw new RangeNotSatisfiableError(`malformed byte range "${specs[0]}"`, { size });
    }
    if (start >= size)
      throw new RangeNotSatisfiableError(`range starts at ${start}, the representation has ${size} bytes`, {
        size,
      });
  }
  return { kind: 'range', start, end };
}

/** True when an If-None-Match header matches the ETag (weak comparison, RFC 9110 §13.1.2). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}
