import zlib from 'node:zlib';

/** Framing compressors: zstd (Node ≥ 23.8 / 22.15 ships it in node:zlib) and brotli (every Node). */
export type Compression = 'zstd' | 'brotli';

export const ZSTD_AVAILABLE = typeof zlib.zstdCompressSync === 'function';
export const DEFAULT_COMPRESSION: Compression = ZSTD_AVAILABLE ? 'zstd' : 'brotli';

/** Compresses with a level: zstd 1–22, brotli 0–11 (clamped to the range). */
export function compress(data: Uint8Array, compression: Compression, level: number): Uint8Array {
  if (compression === 'zstd') {
    if (!ZSTD_AVAILABLE) throw new Error('zstd is not available in this Node.js');
    const l = Math.min(22, Math.max(1, Math.round(level)));
    return zlib.zstdCompressSync(data, {
      params: {
        [zlib.constants.ZSTD_c_compressionLevel]: l,
        [zlib.constants.ZSTD_c_checksumFlag]: 1,
      },
    });
  }
  const l = Math.min(11, Math.max(0, Math.round(level)));
  return zlib.brotliCompressSync(data, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: l,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.byteLength,
    },
  });
}

/** Decompresses at most `maxBytes` (a guard against decompression bombs); throws on corrupt or oversized input. */
export function decompress(data: Uint8Array, compression: Compression, maxBytes: number): Uint8Array {
  const options = { maxOutputLength: Math.max(1, maxBytes) };
  if (compression === 'zstd') {
    if (!ZSTD_AVAILABLE) throw new Error('zstd is not available in this Node.js');
    return zlib.zstdDecompressSync(data, options);
  }
  return zlib.brotliDecompressSync(data, options);
}
