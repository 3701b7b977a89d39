import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { OtaError } from '../errors.js';
import type { RegistryClient } from '../registry-client.js';

export interface DownloadLimits {
  /** Abort when no byte arrives for this long (default 30 s). */
  stallTimeoutMs: number;
  /**
   * Slow-retrieval defence (TUF): after `rateGraceMs`, the average rate over each `rateWindowMs` must reach this
   * (default 1 KiB/s over 10 s windows after 10 s).
   */
  minBytesPerSecond: number;
  rateWindowMs: number;
  rateGraceMs: number;
}

export const DEFAULT_DOWNLOAD_LIMITS: DownloadLimits = {
  stallTimeoutMs: 30_000,
  minBytesPerSecond: 1024,
  rateWindowMs: 10_000,
  rateGraceMs: 10_000,
};

export interface DownloadTarget {
  url: string;
  /** Declared length: more bytes are refused as they arrive (endless-data attack). */
  size: number;
  sha256: string;
}

export interface DownloadResult {
  path: string;
  /** Bytes fetched over the network by this call (less than size when a partial file was resumed). */
  fetched: number;
  resumed: boolean;
}

function hashPrefix(fd: number, length: number): ReturnType<typeof createHash> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(1 << 16);
  let at = 0;
  while (at < length) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, length - at), at);
    if (n <= 0) break;
    hash.update(buf.subarray(0, n));
    at += n;
  }
  return hash;
}

/**
 * Downloads `target` into `path` (a staging file), resuming a partial file with `Range: bytes=<have>-` and
 * `If-Range: "<sha256>"` (the registry's ETag). Refuses bytes past the declared size as they arrive, a stalled or
 * too slow transfer, a short body, and content whose sha256 differs; the file is fsynced before it is reported
 * complete. A partial file is kept for the next attempt except when its content is known bad.
 */
export async function downloadResumable(
  registry: RegistryClient,
  target: DownloadTarget,
  path: string,
  limits: DownloadLimits = DEFAULT_DOWNLOAD_LIMITS,
  onProgress: (received: number) => void = () => {},
  signal?: AbortSignal,
): Promise<DownloadResult> {
  const fd = openSync(path, existsSync(path) ? 'r+' : 'w+', 0o600);
  try {
    let have = fstatSync(fd).size;
    if (have > target.size) {
      ftruncateSync(fd, 0);
      have = 0;
    }
    if (have === target.size) {
      const hash = hashPrefix(fd, have);
      if (hash.digest('hex') === target.sha256) return { path, fetched: 0, resumed: true };
      ftruncateSync(fd, 0);
      have = 0;
    }
    const controller = new AbortController();
    const abortReason = { code: null as null | 'slow-retrieval' | 'stall' };
    const onAbort = () => controller.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = {};
    if (have > 0) {
      headers['range'] = `bytes=${have}-`;
      headers['if-range'] = `"${target.sha256}"`;
    }
    let stall: NodeJS.Timeout | undefined;
    const armStall = () => {
      clearTimeout(stall);
      stall = setTimeout(() => {
        abortReason.code = 'stall';
        controller.abort();
      }, limits.stallTimeoutMs);
    };
    armStall();
    let res: Response;
    try {
      res = await registry.request('GET', target.url, { headers, signal: controller.signal });
    } catch (error) {
      clearTimeout(stall);
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) throw new OtaError('cancelled', 'the update was cancelled');
      if (abortReason.code)
        throw new OtaError(
          'slow-retrieval',
          `no answer from ${target.url} within ${limits.stallTimeoutMs} ms`,
        );
      throw new OtaError('download-failed', `GET ${target.url}: ${(error as Error).message}`);
    }
    let offset = have;
    if (res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) {
        offset = 0;
      }
    } else if (res.status === 200) {
      offset = 0;
    } else {
      clearTimeout(stall);
      signal?.removeEventListener('abort', onAbort);
      await res.body?.cancel();
      if (res.status === 416) ftruncateSync(fd, 0);
      throw new OtaError('download-failed', `GET ${target.url}: HTTP ${res.status}`);
    }
    if (offset === 0) ftruncateSync(fd, 0);
    else if (res.status !== 206) throw new OtaError('download-failed', 'unexpected partial content');
    const hash = offset > 0 ? hashPrefix(fd, offset) : createHash('sha256');
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && offset + declared > target.size) {
      clearTimeout(stall);
      await res.body?.cancel();
      throw new OtaError(
        'too-large',
        `the server announces ${offset + declared} bytes, the manifest ${target.size}`,
      );
    }
    const started = Date.now();
    let windowStart = started;
    let windowBytes = 0;
    const rateTimer = setInterval(
      () => {
        const now = Date.now();
        if (now - started < limits.rateGraceMs) {
          windowStart = now;
          windowBytes = 0;
          return;
        }
        if (now - windowStart >= limits.rateWindowMs) {
          const rate = (windowBytes * 1000) / (now - windowStart);
          if (rate < limits.minBytesPerSecond) {
            abortReason.code = 'slow-retrieval';
            controller.abort();
          }
          windowStart = now;
          windowBytes = 0;
        }
      },
      Math.max(10, Math.min(1000, limits.rateWindowMs / 4)),
    );
    let at = offset;
    const fetchedBefore = at;
    try {
      const reader = res.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        armStall();
        if (at + value.byteLength > target.size) {
          await reader.cancel();
          ftruncateSync(fd, 0);
          throw new OtaError('too-large', `more than the ${target.size} bytes the manifest declares`);
        }
        let written = 0;
        while (written < value.byteLength)
          written += writeSync(fd, value, written, value.byteLength - written, at + written);
        hash.update(value);
        at += value.byteLength;
        windowBytes += value.byteLength;
        onProgress(at);
      }
    } catch (error) {
      fsyncSync(fd);
      if (error instanceof OtaError) throw error;
      if (signal?.aborted) throw new OtaError('cancelled', 'the update was cancelled');
      if (abortReason.code === 'slow-retrieval')
        throw new OtaError(
          'slow-retrieval',
          `${target.url} arrived slower than ${limits.minBytesPerSecond} B/s`,
        );
      if (abortReason.code === 'stall')
        throw new OtaError('slow-retrieval', `${target.url} stalled for ${limits.stallTimeoutMs} ms`);
      throw new OtaError('truncated', `${target.url} broke off after ${at} of ${target.size} bytes`);
    } finally {
      clearTimeout(stall);
      clearInterval(rateTimer);
      signal?.removeEventListener('abort', onAbort);
    }
    fsyncSync(fd);
    if (at < target.size)
      throw new OtaError('truncated', `${target.url} ended after ${at} of ${target.size} bytes`);
    if (hash.digest('hex') !== target.sha256) {
      ftruncateSync(fd, 0);
      throw new OtaError('hash-mismatch', `${target.url}: sha256 does not match the signed manifest`);
    }
    return { path, fetched: at - fetchedBefore, resumed: offset > 0 };
  } finally {
    closeSync(fd);
  }
}
