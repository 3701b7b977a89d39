import { createHash } from 'node:crypto';
import { ChunkTreeError } from './errors.js';

/**
 * A chunk Merkle tree over an artifact, hashed as RFC 6962 §2.1 (Certificate Transparency) does it:
 * leaf = SHA-256(0x00 ‖ chunk), node = SHA-256(0x01 ‖ left ‖ right), the left subtree holding the largest power
 * of two below n leaves. The root goes into the signed manifest; a device holding chunks of any earlier version
 * fetches only the chunks whose leaf hash it does not have, and checks each fetched chunk against the root with an
 * audit path. Written by hand: it is ~60 lines over node:crypto, and no maintained package does RFC 6962 audit
 * paths without pulling a whole transparency-log client.
 */
export const DEFAULT_CHUNK_SIZE = 64 * 1024;

export interface ChunkTree {
  chunkSize: number;
  /** Artifact size in bytes. */
  size: number;
  /** Leaf hashes (hex), one per chunk, in order; the last chunk may be short. */
  leaves: string[];
  /** Merkle tree hash (hex). The tree of an empty artifact has the hash of the empty string (RFC 6962). */
  root: string;
}

const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export function leafHash(chunk: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF).update(chunk).digest();
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256').update(NODE).update(left).update(right).digest();
}

function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function mth(leaves: readonly Buffer[], lo: number, hi: number): Buffer {
  const n = hi - lo;
  if (n === 0) return createHash('sha256').digest();
  if (n === 1) return leaves[lo]!;
  const k = largestPowerOfTwoBelow(n);
  return nodeHash(mth(leaves, lo, lo + k), mth(leaves, lo + k, hi));
}

function assertChunkSize(chunkSize: number): void {
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 64 || chunkSize > 64 * 1024 * 1024) {
    throw new ChunkTreeError('chunk size must be an integer between 64 bytes and 64 MiB');
  }
}

/** Number of chunks an artifact of `size` bytes has. */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Builds the tree of an artifact's fixed-size chunks. */
export function buildChunkTree(bytes: Uint8Array, chunkSize = DEFAULT_CHUNK_SIZE): ChunkTree {
  assertChunkSize(chunkSize);
  const leaves: Buffer[] = [];
  for (let at = 0; at < bytes.byteLength; at += chunkSize)
    leaves.push(leafHash(bytes.subarray(at, at + chunkSize)));
  return {
    chunkSize,
    size: bytes.byteLength,
    leaves: leaves.map((l) => l.toString('hex')),
    root: mth(leaves, 0, leaves.length).toString('hex'),
  };
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Checks that a tree (e.g. received from a registry) is well formed and that its leaves hash to its root. */
export function verifyChunkTree(tree: ChunkTree, expectedRoot?: string): void {
  if (typeof tree !== 'object' || tree === null || !Array.isArray(tree.leaves))
    throw new ChunkTreeError('not a chunk tree');
  assertChunkSize(tree.chunkSize);
  if (
    !Number.isSafeInteger(tree.size) ||
    tree.size < 0 ||
    tree.leaves.length !== chunkCount(tree.size, tree.chunkSize)
  ) {
    throw new ChunkTreeError('chunk tree leaf count does not match its size');
  }
  if (!tree.leaves.every((l) => typeof l === 'string' && HEX64.test(l)))
    throw new ChunkTreeError('chunk tree leaf is not a sha256');
  const root = mth(
    tree.leaves.map((l) => Buffer.from(l, 'hex')),
    0,
    tree.leaves.length,
  ).toString('hex');
  if (root !== tree.root || (expectedRoot !== undefined && root !== expectedRoot)) {
    throw new ChunkTreeError('chunk tree leaves do not hash to the expected root');
  }
}

/** Where a needed chunk can be copied from locally. */
export interface LocalChunk {
  /** Index of the chunk in the target. */
  index: number;
  /** Its leaf hash. */
  leaf: string;
}

export interface ChunkPlan {
  /** Target chunk indexes to download. */
  fetch: number[];
  /** Target chunks the device already holds (by leaf hash, from any earlier version and any position). */
  reuse: LocalChunk[];
  /** Bytes to download. */
  fetchBytes: number;
}

/**
 * Lists the chunks of `target` a device must fetch, given the leaf hashes it already holds (the chunks of any
 * versions it has). The target tree should have been checked with {@link verifyChunkTree} against the root of a
 * verified manifest.
 */
export function chunksToFetch(held: Iterable<string>, target: ChunkTree): ChunkPlan {
  const have = new Set(held);
  const fetch: number[] = [];
  const reuse: LocalChunk[] = [];
  let fetchBytes = 0;
  target.leaves.forEach((leaf, index) => {
    if (have.has(leaf)) reuse.push({ index, leaf });
    else {
      fetch.push(index);
      fetchBytes += Math.min(target.chunkSize, target.size - index * target.chunkSize);
    }
  });
  return { fetch, reuse, fetchBytes };
}

/** RFC 6962 audit path of leaf `index`: sibling hashes from the leaf up (hex). */
export function chunkProof(tree: ChunkTree, index: number): string[] {
  const n = tree.leaves.length;
  if (!Number.isSafeInteger(index) || index < 0 || index >= n)
    throw new ChunkTreeError(`chunk ${index} is out of range`);
  const leaves = tree.leaves.map((l) => Buffer.from(l, 'hex'));
  const path: Buffer[] = [];
  const walk = (m: number, lo: number, hi: number): void => {
    const size = hi - lo;
    if (size <= 1) return;
    const k = largestPowerOfTwoBelow(size);
    if (m < k) {
      walk(m, lo, lo + k);
      path.push(mth(leaves, lo + k, hi));
    } else {
      walk(m - k, lo + k, hi);
      path.push(mth(leaves, lo, lo + k));
    }
  };
  walk(index, 0, n);
  return path.map((p) => p.toString('hex'));
}

/**
 * Verifies one chunk against a root (RFC 9162 §2.1.3.2 audit-path verification): `count` is the number of chunks
 * in the tree. Returns false for a chunk, index or path that does not match; never throws on bad input.
 */
export function verifyChunk(
  root: string,
  index: number,
  count: number,
  chunk: Uint8Array,
  proof: readonly string[],
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || index < 0 || index >= count)
    return false;
  if (!Array.isArray(proof) || !proof.every((p) => typeof p === 'string' && HEX64.test(p))) return false;
  let fn = index;
  let sn = count - 1;
  let r = leafHash(chunk);
  for (const p of proof) {
    if (sn === 0) return false;
    const sibling = Buffer.from(p, 'hex');
    if ((fn & 1) === 1 || fn === sn) {
      r = nodeHash(sibling, r);
      if ((fn & 1) === 0) {
        while ((fn & 1) === 0 && fn !== 0) {
          fn >>>= 1;
          sn >>>= 1;
        }
      }
    } else {
      r = nodeHash(r, sibling);
    }
    fn >>>= 1;
    sn >>>= 1;
  }
  return sn === 0 && r.toString('hex') === root;
}
