import { randomUUID } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { decryptWithDataKey, encryptWithDataKey, type KeyProvider } from '@edgefl/keys';

/** Plaintext bytes per encrypted chunk. */
export const BLOB_CHUNK_BYTES = 64 * 1024;
/** What @edgefl/keys' envelope adds to each chunk: 3-byte header, 12-byte IV, 16-byte tag. */
const ENVELOPE_OVERHEAD = 3 + 12 + 16;
const ENVELOPE_BYTES = BLOB_CHUNK_BYTES + ENVELOPE_OVERHEAD;

/** A stored blob failed authentication (altered on disk, or another key/name): it is never served. */
export class BlobTamperedError extends Error {
  override readonly name = 'BlobTamperedError';
}

export interface StoredBlob {
  key: string;
  /** The blob's data key wrapped under the tenant's key-encryption key (store it with the metadata). */
  wrappedKey: string;
  sizeBytes: number;
}

/** The tenant's key-encryption key name at the KeyProvider. */
export const tenantKekName = (tenantId: string) => `tenant-${tenantId}`;

/**
 * Artifacts and deltas on the filesystem, encrypted at rest with per-tenant data keys (envelope encryption: a fresh
 * data key per blob, wrapped by the tenant's key-encryption key at the KeyProvider, so Vault can hold the KEK).
 *
 * Format (written here because no library does range-addressable authenticated encryption): the plaintext is cut
 * into 64 KiB chunks, each sealed as its own AES-256-GCM envelope (`encryptWithDataKey`, random IV) with AAD
 * `edgefl-blob|<key>|<index>|<last?1:0>`. Envelopes have a fixed size, so an HTTP Range decrypts only the chunks it
 * touches; the index in the AAD stops reordering, the last-flag stops truncation, the key stops swapping blobs.
 */
export class EncryptedBlobStore {
  private readonly keks = new Set<string>();
  // Unwrapped data keys, kept in memory only (never logged) so hot downloads skip a KeyProvider round trip.
  private readonly dataKeys = new Map<string, Uint8Array>();

  constructor(
    private readonly root: string,
    private readonly keys: KeyProvider,
    private readonly maxCachedKeys = 256,
  ) {}

  private path(key: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key) || key.includes('..'))
      throw new Error(`bad blob key ${key}`);
    return join(this.root, key);
  }

  /** Encrypts and writes a blob atomically (temp file + rename). */
  async put(tenantId: string, key: string, plaintext: Uint8Array): Promise<StoredBlob> {
    const kek = tenantKekName(tenantId);
    if (!this.keks.has(kek)) {
      await this.keys.createKeyEncryptionKey(kek);
      this.keks.add(kek);
    }
    const dataKey = await this.keys.generateDataKey(kek);
    const target = this.path(key);
    await mkdir(dirname(target), { recursive: true });
    const temp = `${target}.${randomUUID()}.tmp`;
    const file = await open(temp, 'w');
    try {
      const chunks = Math.max(1, Math.ceil(plaintext.byteLength / BLOB_CHUNK_BYTES));
      for (let i = 0; i < chunks; i++) {
        const part = plaintext.subarray(i * BLOB_CHUNK_BYTES, (i + 1) * BLOB_CHUNK_BYTES);
        await file.write(encryptWithDataKey(dataKey.plaintext, part, aad(key, i, i === chunks - 1)));
      }
      await file.sync();
    } finally {
      await file.close();
      dataKey.plaintext.fill(0);
    }
    await rename(temp, target);
    return { key, wrappedKey: dataKey.wrapped, sizeBytes: plaintext.byteLength };
  }

  async remove(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  private async dataKey(tenantId: string, wrappedKey: string): Promise<Uint8Array> {
    const cacheKey = `${tenantId}|${wrappedKey}`;
    const cached = this.dataKeys.get(cacheKey);
    if (cached) return cached;
    const key = await this.keys.unwrapDataKey(tenantKekName(tenantId), wrappedKey);
    if (this.dataKeys.size >= this.maxCachedKeys) {
      const oldest = this.dataKeys.keys().next().value;
      if (oldest !== undefined) this.dataKeys.delete(oldest);
    }
    this.dataKeys.set(cacheKey, key);
    return key;
  }

  /**
   * The plaintext bytes [start, end] (inclusive) of a blob of `sizeBytes`, decrypting only the chunks the range
   * touches. The first chunk is decrypted before the stream is returned, so a tampered blob fails before any
   * response header is sent (later chunks fail the stream).
   */
  async read(
    blob: { tenantId: string; key: string; wrappedKey: string; sizeBytes: number },
    start = 0,
    end = blob.sizeBytes - 1,
  ): Promise<Readable> {
    const dataKey = await this.dataKey(blob.tenantId, blob.wrappedKey);
    const path = this.path(blob.key);
    const chunks = Math.max(1, Math.ceil(blob.sizeBytes / BLOB_CHUNK_BYTES));
    const expectedFileBytes =
      (chunks - 1) * ENVELOPE_BYTES + (blob.sizeBytes - (chunks - 1) * BLOB_CHUNK_BYTES) + ENVELOPE_OVERHEAD;
    const size = (await stat(path)).size;
    if (size !== expectedFileBytes) throw new BlobTamperedError(`blob ${blob.key} has an unexpected length`);
    if (blob.sizeBytes === 0) return Readable.from([]);
    const first = Math.floor(start / BLOB_CHUNK_BYTES);
    const last = Math.floor(end / BLOB_CHUNK_BYTES);
    const file = await open(path, 'r');
    const decryptChunk = async (index: number): Promise<Buffer> => {
      const length = Math.min(ENVELOPE_BYTES, size - index * ENVELOPE_BYTES);
      const envelope = Buffer.allocUnsafe(length);
      const { bytesRead } = await file.read(envelope, 0, length, index * ENVELOPE_BYTES);
      if (bytesRead !== length) throw new BlobTamperedError(`blob ${blob.key} is truncated`);
      let plain: Uint8Array;
      try {
        plain = decryptWithDataKey(dataKey, envelope, aad(blob.key, index, index === chunks - 1));
      } catch {
        throw new BlobTamperedError(`blob ${blob.key} failed authentication at chunk ${index}`);
      }
      const from = index === first ? start - index * BLOB_CHUNK_BYTES : 0;
      const to = index === last ? end - index * BLOB_CHUNK_BYTES + 1 : plain.byteLength;
      return Buffer.from(plain.buffer, plain.byteOffset + from, to - from);
    };
    let head: Buffer;
    try {
      head = await decryptChunk(first);
    } catch (error) {
      await file.close();
      throw error;
    }
    async function* body(): AsyncGenerator<Buffer> {
      try {
        yield head;
        for (let i = first + 1; i <= last; i++) yield await decryptChunk(i);
      } finally {
        await file.close();
      }
    }
    return Readable.from(body(), { objectMode: false });
  }

  /** The whole plaintext of a blob (for building deltas and tests). */
  async readAll(blob: {
    tenantId: string;
    key: string;
    wrappedKey: string;
    sizeBytes: number;
  }): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of await this.read(blob)) parts.push(part as Buffer);
    return Buffer.concat(parts);
  }
}

function aad(key: string, index: number, last: boolean): string {
  return `edgefl-blob|${key}|${index}|${last ? 1 : 0}`;
}
