import { describe, expect, it } from 'vitest';
import {
  decodeUpdate,
  encodeFloat16,
  encodeFloat32,
  encodeInt8,
  encodeSparse,
  TopKCompressor,
} from './compress.js';
import { DecodeError, InvalidParameterError, InvalidUpdateError } from './errors.js';
import { createNormal, createSeededUniform } from './rng.js';

const normal = createNormal(createSeededUniform(11));
const weights = [
  Float32Array.from({ length: 1000 }, () => normal()),
  Float32Array.from({ length: 37 }, () => normal() * 5),
];

describe('byte encodings round-trip', () => {
  it('float32 is lossless', () => {
    const d = decodeUpdate(encodeFloat32(weights));
    expect(d.codec).toBe('float32');
    expect(d.weights).toEqual(weights);
  });

  it('float16 is within half-precision rounding and refuses values beyond its range', () => {
    const bytes = encodeFloat16(weights);
    expect(bytes.length).toBe(12 + 8 + 2 * 1037);
    const d = decodeUpdate(bytes);
    d.weights.forEach((l, i) =>
      l.forEach((v, j) =>
        expect(Math.abs(v - weights[i]![j]!)).toBeLessThanOrEqual(
          Math.abs(weights[i]![j]!) * 2 ** -11 + 1e-7,
        ),
      ),
    );
    expect(() => encodeFloat16([Float32Array.of(1e6)])).toThrow(InvalidParameterError);
  });

  it('int8 with per-block scales: error below one step per value, unbiased on average', () => {
    const bytes = encodeInt8(weights, { blockSize: 64, uniform: createSeededUniform(1) });
    const d = decodeUpdate(bytes);
    d.weights.forEach((l, i) => {
      const step = Math.max(...weights[i]!.map(Math.abs)) / 127;
      l.forEach((v, j) => expect(Math.abs(v - weights[i]![j]!)).toBeLessThanOrEqual(step * 1.0001));
    });
    // stochastic rounding: the mean of many encodings converges to the value
    const x = [Float32Array.of(0.3, 1)];
    let s = 0;
    const u = createSeededUniform(5);
    for (let t = 0; t < 4000; t++) s += decodeUpdate(encodeInt8(x, { uniform: u })).weights[0]![0]!;
    expect(s / 4000).toBeCloseTo(0.3, 3);
  });

  it('top-k with error feedback sends the largest values and keeps the rest for later', () => {
    const c = new TopKCompressor([4, 2], 2);
    const sp = c.compress([Float32Array.of(1, -5, 0.5, 0), Float32Array.of(3, 0.1)]);
    expect([...sp.indices]).toEqual([1, 4]);
    expect([...sp.values]).toEqual([-5, 3]);
    const d = decodeUpdate(encodeSparse(sp));
    expect(d.codec).toBe('topk');
    expect([...d.weights[0]!]).toEqual([0, -5, 0, 0]);
    expect([...d.weights[1]!]).toEqual([3, 0]);
    // the residual (1, 0.5, 0.1) comes back next round
    const next = c.compress([new Float32Array(4), Float32Array.of(0, 0.1)]);
    expect([...next.indices]).toEqual([0, 2]);
    const sent = [...sp.values, ...next.values].reduce((a, b) => a + b, 0);
    const pending = c
      .pending()
      .flatMap((l) => [...l])
      .reduce((a, b) => a + b, 0);
    expect(sent + pending).toBeCloseTo(1 - 5 + 0.5 + 3 + 0.1 + 0.1, 5);
    expect(() => c.compress([new Float32Array(4)])).toThrow(InvalidUpdateError);
  });
});

describe('decoding refuses malformed payloads', () => {
  const good = encodeInt8(weights, { uniform: createSeededUniform(2) });
  it.each([
    ['empty', new Uint8Array()],
    ['bad magic', Uint8Array.from([1, 2, 3, 4, 1, 0, 0, 0, 1, 0, 0, 0])],
    ['truncated', good.subarray(0, good.length - 1)],
    ['trailing bytes', Uint8Array.from([...good, 0])],
    [
      'huge layer count',
      (() => {
        const b = good.slice();
        new DataView(b.buffer).setUint32(8, 0xffffffff, true);
        return b;
      })(),
    ],
    [
      'unknown codec',
      (() => {
        const b = good.slice();
        b[5] = 9;
        return b;
      })(),
    ],
    [
      'NaN in float32',
      encodeFloat32([Float32Array.of(1)]).map((v, i, a) =>
        i >= a.length - 4 ? [0, 0, 0xc0, 0x7f][i - (a.length - 4)]! : v,
      ),
    ],
  ])('%s', (_name, bytes) => {
    expect(() => decodeUpdate(bytes)).toThrow(DecodeError);
  });
});
