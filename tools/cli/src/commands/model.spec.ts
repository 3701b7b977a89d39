import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKeyProvider, verifyEd25519 } from '@edgefl/keys';
import {
  buildChunkTree,
  buildOnnx,
  FRAUD_MLP,
  initWeights,
  readOnnxTensors,
  signManifest,
  verifyManifest,
  type NamedTensor,
  type ReleaseManifest,
} from '@edgefl/model';
import { afterAll, describe, expect, it } from 'vitest';
import { runInProcess } from '../../test/run-in-process.js';

const dir = mkdtempSync(join(tmpdir(), 'edgefl-cli-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = runInProcess;

const file = (name: string, bytes: Uint8Array | string) => {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
};
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const base = initWeights(FRAUD_MLP, 1);
const update = (weights: NamedTensor[], fraction: number): NamedTensor[] =>
  weights.map((t) => ({
    ...t,
    data: t.data.map((v, i) => (i % Math.round(1 / fraction) === 0 ? v * 1.001 + 1e-4 : v)),
  }));

describe('edgefl model delta / patch', () => {
  it('round-trips ONNX files byte for byte', async () => {
    const a = file('a.onnx', buildOnnx(FRAUD_MLP, base));
    const bBytes = buildOnnx(FRAUD_MLP, update(base, 0.05), { modelVersion: 2 });
    const b = file('b.onnx', bBytes);
    const patch = join(dir, 'ab.delta');
    const made = await run(['model', 'delta', '--from', a, '--to', b, '--out', patch]);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/lossless delta/);
    expect(readFileSync(patch).byteLength).toBeLessThan(bBytes.byteLength / 4);
    const out = join(dir, 'b2.onnx');
    const applied = await run(['model', 'patch', '--from', a, '--delta', patch, '--out', out]);
    expect(applied.code).toBe(0);
    expect(sha(readFileSync(out))).toBe(sha(bBytes));
  });

  it('round-trips .f32 files, and bounds the update error with --max-rel-error', async () => {
    const old = new Float32Array(4096).map((_, i) => Math.sin(i) * 0.02);
    const next = old.map((v, i) => v * (1 + 1e-3 * Math.cos(i * 7)));
    const a = file('a.f32', new Uint8Array(old.buffer));
    const b = file('b.f32', new Uint8Array(next.buffer));
    const patch = join(dir, 'q.delta');
    const made = await run([
      'model',
      'delta',
      '--from',
      a,
      '--to',
      b,
      '--out',
      patch,
      '--max-rel-error',
      '0.01',
    ]);
    expect(made.code).toBe(0);
    expect(made.stdout).toMatch(/bounded-error/);
    const out = join(dir, 'q.f32');
    expect((await run(['model', 'patch', '--from', a, '--delta', patch, '--out', out])).code).toBe(0);
    const got = new Float32Array(new Uint8Array(readFileSync(out)).buffer);
    let err2 = 0;
    let norm2 = 0;
    for (let i = 0; i < old.length; i++) {
      err2 += (got[i]! - next[i]!) ** 2;
      norm2 += (next[i]! - old[i]!) ** 2;
    }
    expect(Math.sqrt(err2 / norm2)).toBeLessThanOrEqual(0.01);
  });

  it.each([
    [
      'a missing file',
      () => ['delta', '--from', join(dir, 'nope.onnx'), '--to', file('x.onnx', 'x'), '--out', join(dir, 'o')],
    ],
    [
      'a malformed model',
      () => [
        'delta',
        '--from',
        file('m1.onnx', 'not onnx'),
        '--to',
        file('m2.onnx', 'not onnx'),
        '--out',
        join(dir, 'o'),
      ],
    ],
    [
      'an .f32 of odd length',
      () => [
        'delta',
        '--from',
        file('o1.f32', 'abcde'),
        '--to',
        file('o2.f32', 'abcd'),
        '--out',
        join(dir, 'o'),
      ],
    ],
    [
      'mixed .f32 and model files',
      () => ['delta', '--from', file('p.f32', 'abcd'), '--to', file('p.onnx', 'x'), '--out', join(dir, 'o')],
    ],
    [
      'a bad --max-rel-error',
      () => [
        'delta',
        '--from',
        file('r1.f32', 'abcd'),
        '--to',
        file('r2.f32', 'abcd'),
        '--out',
        join(dir, 'o'),
        '--max-rel-error',
        '2',
      ],
    ],
    [
      'a delta that is not one',
      () => [
        'patch',
        '--from',
        file('s.f32', 'abcd'),
        '--delta',
        file('s.delta', 'garbage'),
        '--out',
        join(dir, 'o'),
      ],
    ],
  ])('exits 2 with one line for %s', async (_name, args) => {
    const r = await run(['model', ...args()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^edgefl: [^\n]+\n$/);
  });

  it('exits 2 for a delta applied to another file, and writes nothing', async () => {
    const a = file('c.f32', new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer));
    const b = file('d.f32', new Uint8Array(new Float32Array([1, 2, 3, 5]).buffer));
    const other = file('e.f32', new Uint8Array(new Float32Array([9, 2, 3, 4]).buffer));
    const patch = join(dir, 'cd.delta');
    expect((await run(['model', 'delta', '--from', a, '--to', b, '--out', patch])).code).toBe(0);
    const out = join(dir, 'never.f32');
    const r = await run(['model', 'patch', '--from', other, '--delta', patch, '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/another file/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('manifests signed through our KeyProvider', () => {
  it('signs with LocalKeyProvider and verifies with libs/model (node:crypto only)', async () => {
    const keys = await LocalKeyProvider.open({ path: join(dir, 'keyring.json') });
    try {
      const pub = await keys.createSigningKey('release');
      const onnx = buildOnnx(FRAUD_MLP, base);
      const tree = buildChunkTree(onnx);
      const manifest: ReleaseManifest = {
        _type: 'edgefl.release-manifest',
        specVersion: 1,
        modelId: 'fraud',
        version: 1,
        label: 'r1',
        created: new Date(Date.now() - 1000).toISOString(),
        expires: new Date(Date.now() + 86_400_000).toISOString(),
        parentVersion: null,
        artifact: {
          format: 'onnx',
          size: onnx.byteLength,
          sha256: sha(onnx),
          chunkSize: tree.chunkSize,
          merkleRoot: tree.root,
        },
        provenance: { roundId: null, participants: 0, dp: null, metrics: {} },
        targeting: { tenants: [], cohorts: [] },
        hardwareClasses: [],
        deltas: [],
      };
      const envelope = await signManifest(manifest, async (bytes) => {
        const { keyId, signature } = await keys.sign('release', bytes);
        expect(verifyEd25519(pub.publicKey, bytes, signature)).toBe(true);
        return { keyId, signature };
      });
      expect(verifyManifest(envelope, { trustedKeys: { [pub.keyId]: pub.publicKey } }).version).toBe(1);
      expect(readOnnxTensors(onnx)).toHaveLength(6);
    } finally {
      await (keys as { close?: () => Promise<void> }).close?.();
    }
  });
});
