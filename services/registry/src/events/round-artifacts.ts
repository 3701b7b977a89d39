import { open, realpath } from 'node:fs/promises';
import { isAbsolute, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UnprocessableRecordError } from '@edgefl/bus';
import { sha256Hex } from '@edgefl/model';

/** Where round results may keep their weights by reference: parsed REGISTRY_ROUND_ARTIFACT_PREFIXES entries. */
export type ArtifactPrefix = { kind: 'file'; dir: string } | { kind: 'http'; url: URL };

/**
 * Parses the configured prefixes: `file:///abs/dir/` or an absolute directory path (a local or shared volume), or
 * an `http(s)://host[:port]/path/` URL. A relative directory, another scheme, credentials in a URL or a query in
 * a prefix are refused (boot fails with the reason), so no prefix can match more than it says.
 */
export function parseArtifactPrefix(raw: string): ArtifactPrefix {
  const text = raw.trim();
  if (text.startsWith('/')) {
    if (!isAbsolute(text)) throw new Error(`artifact prefix ${text}: not an absolute directory`);
    return { kind: 'file', dir: text };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`artifact prefix ${text}: neither an absolute directory nor a URL`);
  }
  if (url.protocol === 'file:') {
    const dir = fileURLToPath(url);
    if (!isAbsolute(dir)) throw new Error(`artifact prefix ${text}: not an absolute directory`);
    return { kind: 'file', dir };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new Error(`artifact prefix ${text}: only file://, http:// and https:// prefixes are allowed`);
  if (url.username || url.password) throw new Error(`artifact prefix ${text}: no credentials in a prefix`);
  if (url.search || url.hash) throw new Error(`artifact prefix ${text}: no query or fragment in a prefix`);
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return { kind: 'http', url };
}

export interface WeightsRef {
  uri: string;
  sha256: string;
  sizeBytes: number;
}

const refuse = (code: string, message: string) => new UnprocessableRecordError(code, message);

/** True when `path` is `dir` itself or lies below it (both already resolved). */
const within = (path: string, dir: string) => path.startsWith(dir.endsWith(sep) ? dir : `${dir}${sep}`);

/**
 * Fetches a round result's weights by reference, only from the configured prefixes (no allow-list: refused), and
 * checks them against the declared size and sha256. A `file://` URI must resolve (`..` and symlinks followed) to a
 * file below one of the configured directories, themselves resolved; an `http(s)://` URI must share a prefix's
 * origin and lie below its path, and redirects are not followed (they could leave the prefix). Never reads more
 * than the declared size (+1 byte to notice a longer body). Refusals are UnprocessableRecordError (dead-lettered
 * with the reason); transport failures are plain errors (retried).
 */
export async function fetchRoundWeights(
  ref: WeightsRef,
  options: { prefixes: readonly ArtifactPrefix[]; maxBytes: number },
): Promise<Buffer> {
  if (!Number.isSafeInteger(ref.sizeBytes) || ref.sizeBytes < 0)
    throw refuse('BAD_SIZE', `weights size ${ref.sizeBytes} is not a byte count`);
  if (ref.sizeBytes > options.maxBytes)
    throw refuse('TOO_LARGE', `weights of ${ref.sizeBytes} bytes exceed the upload limit`);
  if (options.prefixes.length === 0) {
    throw refuse(
      'BY_REFERENCE_DISABLED',
      'weights by reference are disabled: REGISTRY_ROUND_ARTIFACT_PREFIXES names no allowed location',
    );
  }
  let url: URL;
  try {
    url = new URL(ref.uri);
  } catch {
    throw refuse('BAD_URI', 'the weights URI is not a URL');
  }
  let bytes: Buffer;
  if (url.protocol === 'file:') bytes = await readAllowedFile(url, ref, options.prefixes);
  else if (url.protocol === 'http:' || url.protocol === 'https:')
    bytes = await fetchAllowedUrl(url, ref, options.prefixes);
  else throw refuse('BAD_URI', `weights URI scheme ${url.protocol} is not supported`);
  if (bytes.byteLength !== ref.sizeBytes || sha256Hex(bytes) !== ref.sha256) {
    throw refuse('HASH_MISMATCH', `weights at ${ref.uri} do not match their declared size and sha256`);
  }
  return bytes;
}

async function readAllowedFile(url: URL, ref: WeightsRef, prefixes: readonly ArtifactPrefix[]) {
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch {
    throw refuse('BAD_URI', 'the weights file URI is not a local absolute path');
  }
  const dirs = prefixes.filter((p) => p.kind === 'file');
  // first lexically (`..` collapsed), so a path outside every directory is refused whether or not it exists
  if (!dirs.some((d) => within(resolve(path), resolve(d.dir))))
    throw refuse('FORBIDDEN_URI', `weights at ${ref.uri} are outside every allowed directory`);
  const resolved = await realpath(path).catch(() => null);
  if (resolved === null) throw new Error(`weights at ${ref.uri}: no such file (yet)`);
  // then with symlinks followed, on both sides
  const allowed = await Promise.all(dirs.map((d) => realpath(d.dir).catch(() => null)));
  if (!allowed.some((dir) => dir !== null && within(resolved, dir))) {
    throw refuse(
      'FORBIDDEN_URI',
      `weights at ${ref.uri} resolve to ${pathToFileURL(resolved).href}, outside every allowed directory`,
    );
  }
  const handle = await open(resolved, 'r');
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw refuse('FORBIDDEN_URI', `weights at ${ref.uri} are not a regular file`);
    if (stat.size !== ref.sizeBytes)
      throw refuse(
        'HASH_MISMATCH',
        `weights at ${ref.uri} are ${stat.size} bytes, ${ref.sizeBytes} declared`,
      );
    const buffer = Buffer.alloc(ref.sizeBytes);
    let offset = 0;
    while (offset < buffer.byteLength) {
      const { bytesRead } = await handle.read(buffer, offset, buffer.byteLength - offset, offset);
      if (bytesRead === 0) break;
      offset += bytesRead;
    }
    return buffer.subarray(0, offset);
  } finally {
    await handle.close();
  }
}

async function fetchAllowedUrl(url: URL, ref: WeightsRef, prefixes: readonly ArtifactPrefix[]) {
  if (url.username || url.password) throw refuse('FORBIDDEN_URI', 'a weights URL must not carry credentials');
  const ok = prefixes.some(
    (p) => p.kind === 'http' && p.url.origin === url.origin && url.pathname.startsWith(p.url.pathname),
  );
  // `..` segments are already collapsed by the URL parser, so the pathname compared is the one requested
  if (!ok)
    throw refuse('FORBIDDEN_URI', `weights at ${url.origin}${url.pathname} are outside every allowed prefix`);
  const res = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(30_000) });
  if (res.status >= 300 && res.status < 400) {
    await res.body?.cancel();
    throw refuse(
      'FORBIDDEN_URI',
      `weights at ${url.origin}${url.pathname} redirect; redirects are not followed`,
    );
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`weights at ${url.origin}${url.pathname}: HTTP ${res.status}`);
  }
  const parts: Buffer[] = [];
  let received = 0;
  if (res.body) {
    // leaving the loop early cancels the body: no more than the declared size (+ one chunk) is ever read
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      received += chunk.byteLength;
      if (received > ref.sizeBytes) break;
      parts.push(Buffer.from(chunk));
    }
  }
  if (received > ref.sizeBytes)
    throw refuse('HASH_MISMATCH', `weights at ${url.origin}${url.pathname} are longer than declared`);
  return Buffer.concat(parts);
}
