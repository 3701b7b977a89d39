import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeArtifact, encodeArtifact } from '../artifact.js';
import { applyDelta, createDelta, readDeltaHeader } from './index.js';
import { DeltaError, ModelFormatError } from '../errors.js';
import { sha256Hex } from '../hash.js';
import { buildOnnx } from '../onnx/build.js';
import { readOnnxTensors } from '../onnx/read.js';
import { SeededRng } from '../rng.js';
import { DIGITS_MLP, initWeights, type ModelSpec } from '../spec.js';
import { float32ToBytes, type NamedTensor } from '../tensor.js';

const spec: ModelSpec = DIGITS_MLP;
const base = initWeights(spec, 1);

function changed(weights: NamedTensor[], fraction: number, relative: number, seed: number): NamedTensor[] {
  const rng = new SeededRng(seed);
  return weights.map((t) => ({
    ...t,
    data: t.data.map((v) =>
      rng.next() < fraction ? v * (1 + relative * rng.normal()) + (v === 0 ? 1e-3 : 0) : v,
    ),
  }));
}
const art = (weights: NamedTensor[], label = 'r1') =>
  encodeArtifact({ spec, tensors: weights, metadata: { modelId: 'digits', label } });

describe('delta codec (lossless)', () => {
  const old = art(base);
  it.each([
    ['a sparse fine-tune', 0.02, 1e-3, 'sparse'],
    ['a dense update', 1, 1e-3, 'dense'],
  ] as const)('rebuilds %s bit for bit, smaller than the target', (_name, fraction, relative, enc) => {
    const next = art(changed(base, fraction, relative, 7));
    const result = createDelta(old, next);
    expect(result.mode).toBe('lossless');
    expect(result.fellBackToFull).toBe(false);
    expect(result.delta.byteLength).toBeLessThan(next.byteLength * (enc === 'sparse' ? 0.1 : 0.6));
    expect(result.targetSha256).toBe(sha256Hex(next));
    expect(readDeltaHeader(result.delta).tensors.map((t) => t.enc)).toContain(enc);
    expect(Buffer.compare(applyDelta(old, result.delta), next)).toBe(0);
  });

  it('stores nothing for unchanged tensors and the header when only metadata changed', () => {
    const result = createDelta(old, art(base, 'relabelled'));
    const header = readDeltaHeader(result.delta);
    expect(header.tensors.every((t) => t.enc === 'same')).toBe(true);
    expect(header.skeleton.same).toBe(false);
    expect(decodeArtifact(applyDelta(old, result.delta)).metadata.label).toBe('relabelled');
  });

  it('sends a tensor without a counterpart in the source as raw values', () => {
    const extra = encodeArtifact({
      tensors: [...base, { name: 'extra', dims: [3], data: Float32Array.from([1, 2, 3]) }],
      metadata: {},
    });
    const from = encodeArtifact({ tensors: base, metadata: {} });
    const result = createDelta(from, extra);
    expect(readDeltaHeader(result.delta).tensors.find((t) => t.name === 'extra')!.enc).toBe('raw');
    expect(Buffer.compare(applyDelta(from, result.delta), extra)).toBe(0);
  });

  it('rebuilds ONNX files byte for byte (initializers diffed in place)', () => {
    const a = buildOnnx(spec, base, { modelVersion: 1 });
    const b = buildOnnx(spec, changed(base, 0.05, 1e-2, 3), { modelVersion: 2 });
    const result = createDelta(a, b);
    expect(readDeltaHeader(result.delta).format).toBe('onnx');
    expect(result.delta.byteLength).toBeLessThan(b.byteLength / 5);
    expect(Buffer.compare(applyDelta(a, result.delta), b)).toBe(0);
  });

  it('rebuilds raw .f32 files, including NaN payloads, infinities and signed zeros', () => {
    const a = Float32Array.from([0, -0, 1, NaN, Infinity, -Infinity, 3.5, 1e-40]);
    const b = Float32Array.from([-0, 0, 1.0000001, -NaN, -Infinity, 2, 3.5, 2e-40]);
    const result = createDelta(float32ToBytes(a), float32ToBytes(b), { format: 'f32' });
    expect(Buffer.compare(applyDelta(float32ToBytes(a), result.delta), float32ToBytes(b))).toBe(0);
  });

  it('is lossless for arbitrary float bit patterns (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 300 }),
        fc.array(fc.nat({ max: 299 })),
        fc.integer(),
        (words, positions, salt) => {
          const a = new Uint32Array(words);
          const b = a.slice();
          for (const p of positions) if (p < b.length) b[p] = (b[p]! + salt) >>> 0;
          const ab = new Uint8Array(a.buffer);
          const bb = new Uint8Array(b.buffer);
          const result = createDelta(ab, bb, { format: 'f32' });
          expect(Buffer.compare(applyDelta(ab, result.delta), bb)).toBe(0);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('falls back to the full target when a delta is not smaller', () => {
    const rng = new SeededRng(2);
    const a = Float32Array.from({ length: 256 }, () => rng.normal());
    const b = Float32Array.from({ length: 256 }, () => rng.normal());
    const result = createDelta(float32ToBytes(a), float32ToBytes(b), { format: 'f32' });
    expect(result.fellBackToFull).toBe(true);
    expect(result.mode).toBe('full');
    expect(Buffer.compare(applyDelta(float32ToBytes(a), result.delta), float32ToBytes(b))).toBe(0);
    expect(() => applyDelta(float32ToBytes(b), result.delta)).toThrow(
      expect.objectContaining({ code: 'source-mismatch' }),
    );
  });
});

describe('delta codec (bounded error)', () => {
  const old = art(base);
  const target = changed(base, 1, 1e-3, 9);
  it.each([0.01, 0.05, 0.2])(
    'keeps the relative L2 error of the update ≤ %s and signs the reconstruction',
    (maxRelError) => {
      const next = art(target);
      const result = createDelta(old, next, { maxRelError });
      expect(result.mode).toBe('bounded');
      const rebuilt = applyDelta(old, result.delta);
      expect(sha256Hex(rebuilt)).toBe(result.targetSha256);
      expect(Buffer.compare(rebuilt, result.target)).toBe(0);
      let err2 = 0;
      let norm2 = 0;
      const got = decodeArtifact(rebuilt).tensors;
      target.forEach((t, k) => {
        for (let i = 0; i < t.data.length; i++) {
          const u = t.data[i]! - base[k]!.data[i]!;
          const e = got[k]!.data[i]! - t.data[i]!;
          err2 += e * e;
          norm2 += u * u;
        }
      });
      expect(Math.sqrt(err2 / norm2)).toBeLessThanOrEqual(maxRelError);
      expect(result.relError).toBeCloseTo(Math.sqrt(err2 / norm2), 6);
      expect(result.delta.byteLength).toBeLessThan(createDelta(old, next).delta.byteLength);
    },
  );

  it('refuses a bound outside (0, 1)', () => {
    for (const bad of [0, -1, 1, Number.NaN])
      expect(() => createDelta(old, old, { maxRelError: bad })).toThrow(DeltaError);
  });
});

describe('delta codec (bad input)', () => {
  const old = art(base);
  const next = art(changed(base, 0.1, 1e-2, 4));
  const { delta } = createDelta(old, next);

  it('refuses another source', () => {
    const other = art(changed(base, 0.1, 1e-2, 5));
    expect(() => applyDelta(other, delta)).toThrow(expect.objectContaining({ code: 'source-mismatch' }));
  });

  it('refuses malformed inputs to createDelta with typed errors', () => {
    expect(() => createDelta(old, new Uint8Array([1, 2, 3]), { format: 'f32' })).toThrow(ModelFormatError);
    expect(() => createDelta(old.subarray(0, 100), next)).toThrow(ModelFormatError);
  });

  it.each([
    ['empty', new Uint8Array(0), 'bad-magic'],
    ['truncated header', delta.subarray(0, 30), 'truncated'],
    ['truncated body', delta.subarray(0, delta.byteLength - 10), 'corrupt'],
  ])('refuses a %s delta', (_name, bad, code) => {
    expect(() => applyDelta(old, bad)).toThrow(expect.objectContaining({ name: 'DeltaError', code }));
  });

  it('never returns unchecked bytes from a damaged delta (property)', () => {
    const header = readDeltaHeader(delta);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: delta.byteLength - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, flip) => {
          const damaged = delta.slice();
          damaged[at]! ^= flip;
          try {
            const out = applyDelta(old, damaged);
            expect(sha256Hex(out)).toBe(header.target.sha256);
          } catch (error) {
            expect(error).toBeInstanceOf(DeltaError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a delta over ONNX refuses an artifact as its source', () => {
    const a = buildOnnx(spec, base);
    const b = buildOnnx(spec, changed(base, 0.05, 1e-2, 3));
    expect(() => applyDelta(old, createDelta(a, b).delta)).toThrow(DeltaError);
    expect(readOnnxTensors(applyDelta(a, createDelta(a, b).delta)).length).toBe(4);
  });
});
