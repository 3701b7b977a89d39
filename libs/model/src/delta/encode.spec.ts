import { describe, expect, it } from 'vitest';
import { float32ToBytes } from '../tensor.js';
import { chooseLosslessEncoding, createDelta, SPARSE_FRACTION } from './encode.js';
import { readDeltaHeader } from './format.js';

/** `n` words (default 100) of which the first `changed` differ from the source. */
function pair(changed: number, n = 100): { a: Uint32Array; b: Uint32Array } {
  const a = Uint32Array.from({ length: n }, (_, i) => 0x3f800000 + i * 977);
  const b = a.slice();
  for (let i = 0; i < changed; i++) b[i] = (b[i]! + 1) >>> 0;
  return { a, b };
}

describe('chooseLosslessEncoding', () => {
  it('is sparse up to SPARSE_FRACTION of the values changed, dense one value past it', () => {
    expect(SPARSE_FRACTION).toBe(0.25);
    const atThreshold = pair(25);
    expect(chooseLosslessEncoding(atThreshold.a, atThreshold.b)).toEqual({ enc: 'sparse', changed: 25 });
    const past = pair(26);
    expect(chooseLosslessEncoding(past.a, past.b)).toEqual({ enc: 'dense', changed: 26 });
    const one = pair(1);
    expect(chooseLosslessEncoding(one.a, one.b)).toEqual({ enc: 'sparse', changed: 1 });
  });

  it('is same for bit-identical tensors and raw without a source tensor', () => {
    const { a } = pair(0);
    expect(chooseLosslessEncoding(a, a.slice())).toEqual({ enc: 'same', changed: 0 });
    expect(chooseLosslessEncoding(undefined, a)).toEqual({ enc: 'raw', changed: 100 });
  });

  it('compares bits, not values: -0 against 0 and a NaN payload count as changed', () => {
    const a = new Uint32Array(new Float32Array([0, Number.NaN, 1, 2]).buffer);
    const b = a.slice();
    b[0] = 0x80000000; // -0
    b[1] = (b[1]! | 1) >>> 0; // another NaN payload
    expect(chooseLosslessEncoding(a, b)).toEqual({ enc: 'dense', changed: 2 });
  });

  it('is the choice createDelta writes into the header', () => {
    for (const [changed, enc] of [
      [250, 'sparse'],
      [251, 'dense'],
    ] as const) {
      const { a, b } = pair(changed, 1_000);
      const toBytes = (w: Uint32Array) => float32ToBytes(new Float32Array(w.buffer));
      const { delta, fellBackToFull } = createDelta(toBytes(a), toBytes(b), { format: 'f32' });
      expect(fellBackToFull).toBe(false);
      expect(readDeltaHeader(delta).tensors.map((t) => t.enc)).toEqual([enc]);
    }
  });
});
