import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { artifactLayout, decodeArtifact, encodeArtifact } from './artifact.js';
import { ModelFormatError, ModelSpecError } from './errors.js';
import { FRAUD_MLP, initWeights } from './spec.js';

const artifact = () => ({
  spec: FRAUD_MLP,
  tensors: initWeights(FRAUD_MLP, 1),
  metadata: { modelId: 'fraud', label: 'r1' },
});

describe('artifact container', () => {
  it('round-trips spec, tensors and metadata; tensors start on stable, aligned offsets', () => {
    const bytes = encodeArtifact(artifact());
    const back = decodeArtifact(bytes);
    expect(back.spec).toEqual(FRAUD_MLP);
    expect(back.metadata).toEqual({ modelId: 'fraud', label: 'r1' });
    expect(back.tensors.map((t) => t.data)).toEqual(artifact().tensors.map((t) => t.data));
    const layout = artifactLayout(bytes);
    expect(layout.tensors[0]!.offset).toBe(4096);
    for (const t of layout.tensors) expect(t.offset % 64).toBe(0);
    // a longer label moves no tensor
    const relabelled = encodeArtifact({
      ...artifact(),
      metadata: { modelId: 'fraud', label: 'release 2 with a longer label' },
    });
    expect(artifactLayout(relabelled).tensors).toEqual(layout.tensors);
  });

  it('holds tensors without a spec', () => {
    const bytes = encodeArtifact({
      tensors: [{ name: 'x', dims: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
      metadata: {},
    });
    expect(decodeArtifact(bytes).tensors[0]!.data).toEqual(Float32Array.from([1, 2, 3, 4]));
  });

  it('refuses to encode tensors that do not fit the spec', () => {
    expect(() => encodeArtifact({ ...artifact(), tensors: artifact().tensors.slice(1) })).toThrow(
      ModelSpecError,
    );
  });

  const good = encodeArtifact(artifact());
  const withHeader = (json: string) => {
    const h = new TextEncoder().encode(json);
    const out = new Uint8Array(16 + h.byteLength);
    out.set(good.subarray(0, 16));
    new DataView(out.buffer).setUint32(12, h.byteLength, true);
    out.set(h, 16);
    return out;
  };
  it.each([
    ['empty', new Uint8Array(0), 'bad-magic'],
    ['bad magic', new TextEncoder().encode('NOTMODEL________'), 'bad-magic'],
    ['truncated prefix', good.subarray(0, 12), 'truncated'],
    ['truncated inside a tensor', good.subarray(0, good.byteLength - 1), 'truncated'],
    ['trailing bytes', new Uint8Array([...good, 0]), 'trailing-bytes'],
    [
      'unsupported version',
      (() => {
        const b = good.slice();
        b[8] = 9;
        return b;
      })(),
      'unsupported-version',
    ],
    ['header not JSON', withHeader('{nope'), 'bad-header'],
    ['header of the wrong shape', withHeader('{"tensors":"x","metadata":{}}'), 'bad-header'],
    [
      'tensor past the end',
      withHeader('{"tensors":[{"name":"a","dims":[4],"dtype":"float32","offset":4096}],"metadata":{}}'),
      'truncated',
    ],
  ])('refuses %s with a typed error', (_name, bytes, code) => {
    try {
      decodeArtifact(bytes);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ModelFormatError);
      expect((error as ModelFormatError).code).toBe(code);
    }
  });

  it('never crashes on damaged bytes: a typed error or a valid artifact', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: good.byteLength - 1 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: good.byteLength }),
        (at, value, cut) => {
          const damaged = good.slice(0, Math.max(cut, at + 1));
          damaged[at] = value;
          try {
            decodeArtifact(damaged);
          } catch (error) {
            expect(error).toBeInstanceOf(ModelFormatError);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
