import { pipeline } from 'node:stream/promises';
import type { Request, Response } from 'express';
import type { Readable } from 'node:stream';
import { TamperedError } from '@edgefl/service-kit';
import { etagMatches, parseRange } from './range.js';

/**
 * Sends a stored blob with ETag (the content sha256), conditional GET (If-None-Match → 304), resumable ranges
 * (Range, If-Range) and HEAD. `open(start, end)` returns the plaintext stream of [start, end].
 */
export async function sendBlob(
  req: Request,
  res: Response,
  blob: { sha256: string; sizeBytes: number; contentType: string; fileName: string },
  open: (start: number, end: number) => Promise<Readable>,
): Promise<void> {
  const etag = `"${blob.sha256}"`;
  res.setHeader('ETag', etag);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'private, max-age=0, must-revalidate');
  if (etagMatches(req.headers['if-none-match'], etag)) {
    res.status(304).end();
    return;
  }
  // If-Range: the range applies only while the representation is the one the client started with
  const ifRange = req.headers['if-range'];
  const rangeHeader = ifRange !== undefined && ifRange !== etag ? undefined : req.headers.range;
  const range = parseRange(rangeHeader, blob.sizeBytes);
  const [start, end] = range.kind === 'range' ? [range.start, range.end] : [0, blob.sizeBytes - 1];
  let stream: Readable | null;
  try {
    stream = blob.sizeBytes === 0 ? null : await open(start, end);
  } catch (error) {
    if ((error as Error).name === 'BlobTamperedError')
      throw new TamperedError('the stored file failed authentication and is not served');
    throw error;
  }
  res.setHeader('Content-Type', blob.contentType);
  res.setHeader('Content-Disposition', `attachment; filename="${blob.fileName}"`);
  res.setHeader('Content-Length', String(blob.sizeBytes === 0 ? 0 : end - start + 1));
  if (range.kind === 'range') {
    res.status(206);
    res.setHeader('Content-Range', `bytes ${start}-${end}/${blob.sizeBytes}`);
  } else {
    res.status(200);
  }
  if (req.method === 'HEAD' || !stream) {
    stream?.destroy();
    res.end();
    return;
  }
  try {
    await pipeline(stream, res);
  } catch {
    // a chunk failing authentication mid-stream (or the client leaving): the connection is cut, never completed
    res.destroy();
  }
}

/**
 * Reads a raw request body (binary uploads bypass the JSON body parser) up to `limit` bytes. Throws a 413-bearing
 * error as soon as the declared or received length passes the limit.
 */
export async function readBody(req: Request, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge();
  const parts: Buffer[] = [];
  let received = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > limit) {
      req.unpipe?.();
      req.resume();
      throw tooLarge();
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}
