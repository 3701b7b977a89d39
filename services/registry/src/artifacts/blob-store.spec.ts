import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalKeyProvider } from '@edgefl/keys';
import { tempDir } from '@edgefl/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BLOB_CHUNK_BYTES, BlobTamperedError, EncryptedBlobStore } from './blob-store.js';

describe('encrypted blob store', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let keys: LocalKeyProvider;
  let store: EncryptedBlobStore;
  const data = randomBytes(3 * BLOB_CHUNK_BYTES + 1234);
  let blob: { tenantId: string; key: string; wrappedKey: string; sizeBytes: number };

  beforeAll(async () => {
    dir = await tempDir('edgefl-blobs-');
    keys = await LocalKeyProvider.open({ path: join(dir.path, 'keyring.json') });
    store = new EncryptedBlobStore(join(dir.path, 'blobs'), keys);
    const stored = await store.put('t1', 't1/m/1.blob', data);
    blob = { tenantId: 't1', key: stored.key, wrappedKey: stored.wrappedKey, sizeBytes: stored.sizeBytes };
  });
  afterAll(async () => {
    await keys.close();
    await dir.remove();
  });

  it('stores ciphertext, not the plaintext', async () => {
    const raw = await readFile(join(dir.path, 'blobs', blob.key));
    expect(raw.includes(data.subarray(0, 64))).toBe(false);
    expect(await store.readAll(blob)).toEqual(data);
  });

  it('serves any byte range exactly', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(data.length - 1), fc.nat(data.length - 1), async (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const parts: Buffer[] = [];
        for await (const p of await store.read(blob, start, end)) parts.push(p as Buffer);
        expect(Buffer.concat(parts)).toEqual(data.subarray(start, end + 1));
      }),
      { numRuns: 40 },
    );
  });

  it('stores empty blobs', async () => {
    const stored = await store.put('t1', 't1/m/empty.blob', new Uint8Array());
    expect(await store.readAll({ tenantId: 't1', ...stored })).toEqual(Buffer.alloc(0));
  });

  it('refuses a tampered, truncated or swapped blob', async () => {
    const path = join(dir.path, 'blobs', blob.key);
    const original = await readFile(path);
    const flipped = Buffer.from(original);
    flipped[100] = flipped[100]! ^ 1;
    await writeFile(path, flipped);
    await expect(store.read(blob)).rejects.toBeInstanceOf(BlobTamperedError);
    await writeFile(path, original.subarray(0, original.length - 10));
    await expect(store.read(blob)).rejects.toBeInstanceOf(BlobTamperedError);
    await writeFile(path, original);
    // another blob's bytes under this blob's name and key do not decrypt
    const other = await store.put('t1', 't1/m/2.blob', data);
    await writeFile(join(dir.path, 'blobs', 't1/m/2.blob'), original);
    await expect(store.read({ tenantId: 't1', ...other })).rejects.toBeInstanceOf(BlobTamperedError);
  });

  it('uses per-tenant keys: another tenant cannot unwrap the data key', async () => {
    await expect(store.read({ ...blob, tenantId: 't2' })).rejects.toThrow();
  });
});
