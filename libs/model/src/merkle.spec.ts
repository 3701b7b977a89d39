import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ChunkTreeError } from './errors.js';
import { buildChunkTree, chunkProof, chunksToFetch, verifyChunk, verifyChunkTree } from './merkle.js';

const bytesOf = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed * 7) & 255);
const h = (...parts: Uint8Array[]) => {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest();
};

describe('chunk Merkle tree (RFC 6962)', () => {
  it('hashes leaves and nodes with domain separation, splitting at the largest power of two', () => {
    const data = bytesOf(64 * 3);
    const tree = buildChunkTree(data, 64);
    const [l0, l1, l2] = [0, 1, 2].map((i) => h(Uint8Array.of(0), data.subarray(i * 64, i * 64 + 64)));
    const expected = h(Uint8Array.of(1), h(Uint8Array.of(1), l0!, l1!), l2!).toString('hex');
    expect(tree.root).toBe(expected);
    expect(buildChunkTree(new Uint8Array(0), 64).root).toBe(createHash('sha256').digest('hex'));
  });

  it('proves every chunk of trees of 1…20 chunks and refuses tampered chunks, paths and indexes', () => {
    for (let count = 1; count <= 20; count++) {
      const data = bytesOf(64 * count - 5, count);
      const tree = buildChunkTree(data, 64);
      verifyChunkTree(tree, tree.root);
      for (let i = 0; i < count; i++) {
        const chunk = data.subarray(i * 64, i * 64 + 64);
        const proof = chunkProof(tree, i);
        expect(verifyChunk(tree.root, i, count, chunk, proof)).toBe(true);
        const tampered = chunk.slice();
        tampered[0]! ^= 1;
        expect(verifyChunk(tree.root, i, count, tampered, proof)).toBe(false);
        if (count > 1) {
          expect(verifyChunk(tree.root, (i + 1) % count, count, chunk, proof)).toBe(false);
          expect(verifyChunk(tree.root, i, count, chunk, proof.slice(1))).toBe(false);
        }
      }
    }
  });

  it('lists only the chunks a device does not already hold', () => {
    const old = bytesOf(64 * 10);
    const next = old.slice();
    next[64 * 3 + 5]! ^= 0xff;
    next[64 * 7]! ^= 0xff;
    const plan = chunksToFetch(buildChunkTree(old, 64).leaves, buildChunkTree(next, 64));
    expect(plan.fetch).toEqual([3, 7]);
    expect(plan.fetchBytes).toBe(128);
    expect(plan.reuse).toHaveLength(8);
  });

  it('refuses a tree whose leaves do not hash to the root', () => {
    const tree = buildChunkTree(bytesOf(640), 64);
    expect(() => verifyChunkTree({ ...tree, leaves: [...tree.leaves].reverse() })).toThrow(ChunkTreeError);
    expect(() => verifyChunkTree({ ...tree, size: 64 })).toThrow(ChunkTreeError);
    expect(() => verifyChunkTree(tree, '0'.repeat(64))).toThrow(ChunkTreeError);
  });
});
