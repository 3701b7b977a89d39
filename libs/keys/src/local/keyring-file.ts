import { constants } from 'node:fs';
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { KeyError } from '../errors.js';

/**
 * The keyring file, format version 1 (JSON, mode 0600):
 *
 * {
 *   "format": "edgefl-keyring", "formatVersion": 1,
 *   "keys": {
 *     "<name>": { "kind": "signing" | "seal" | "kek",
 *                 "versions": [ { "version": 1, "createdAt": "<ISO 8601>", "secret": "<base64>" }, ... ] }
 *   }
 * }
 *
 * `secret` is PKCS#8 DER for Ed25519 signing keys, the raw 32-byte X25519 scalar for seal keys, and the raw
 * 32-byte AES key for key-encryption keys. Public keys are derived, never stored (nothing to get out of step).
 */
export const KEYRING_FORMAT = 'edgefl-keyring';
export const KEYRING_FORMAT_VERSION = 1;

const versionSchema = z.object({
  version: z.number().int().positive(),
  createdAt: z.string().min(1),
  secret: z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/),
});
const entrySchema = z.object({
  kind: z.enum(['signing', 'seal', 'kek']),
  versions: z.array(versionSchema).min(1),
});
const keyringSchema = z.object({
  format: z.literal(KEYRING_FORMAT),
  formatVersion: z.literal(KEYRING_FORMAT_VERSION),
  keys: z.record(z.string(), entrySchema),
});

export type KeyringVersion = z.infer<typeof versionSchema>;
export type KeyringEntry = z.infer<typeof entrySchema>;
export type KeyringDocument = z.infer<typeof keyringSchema>;

export function emptyKeyring(): KeyringDocument {
  return { format: KEYRING_FORMAT, formatVersion: KEYRING_FORMAT_VERSION, keys: {} };
}

/** Identity of the file's current content, to notice writes by another process cheaply. */
export interface FileStamp {
  ino: number;
  size: number;
  mtimeMs: number;
}

const checkPermissions = process.platform !== 'win32';

function assertPrivate(path: string, mode: number): void {
  if (checkPermissions && (mode & 0o077) !== 0) {
    throw new KeyError(
      'KEYRING_INSECURE',
      `keyring ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}; it must not be readable or writable by group or others (chmod 600)`,
    );
  }
}

export async function fileStamp(path: string): Promise<FileStamp | undefined> {
  try {
    const s = await stat(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch {
    return undefined;
  }
}

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  return (
    a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs
  );
}

/** Reads and validates the keyring; undefined when the file does not exist. */
export async function readKeyring(
  path: string,
): Promise<{ doc: KeyringDocument; stamp: FileStamp } | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP')
      throw new KeyError('KEYRING_INSECURE', `keyring ${path} is a symbolic link; refusing to follow it`);
    throw new KeyError('BACKEND_UNAVAILABLE', `cannot open keyring ${path} (${code ?? 'error'})`);
  }
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw new KeyError('KEYRING_CORRUPT', `keyring ${path} is not a regular file`);
    assertPrivate(path, s.mode);
    const text = await handle.readFile('utf8');
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new KeyError('KEYRING_CORRUPT', `keyring ${path} is not valid JSON`);
    }
    if (typeof raw === 'object' && raw !== null && (raw as { format?: unknown }).format === KEYRING_FORMAT) {
      const version = (raw as { formatVersion?: unknown }).formatVersion;
      if (version !== KEYRING_FORMAT_VERSION) {
        throw new KeyError(
          'KEYRING_CORRUPT',
          `keyring ${path} has format version ${String(version)}; this code reads version ${KEYRING_FORMAT_VERSION}`,
        );
      }
    }
    const parsed = keyringSchema.safeParse(raw);
    if (!parsed.success) {
      // Only the location of the first problem: zod messages could quote values, and values here are secrets.
      const where = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
      throw new KeyError(
        'KEYRING_CORRUPT',
        `keyring ${path} is not an edgefl keyring (problem at "${where}")`,
      );
    }
    return { doc: parsed.data, stamp: { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs } };
  } finally {
    await handle.close();
  }
}

/** Writes the keyring atomically: a 0600 temp file in the same directory, fsync, rename over, fsync the directory. */
export async function writeKeyring(path: string, doc: KeyringDocument): Promise<FileStamp> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.chmod(0o600); // independent of the umask
    await handle.writeFile(`${JSON.stringify(doc, null, 2)}\n`, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temp, path);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    if (error instanceof KeyError) throw error;
    throw new KeyError(
      'BACKEND_UNAVAILABLE',
      `cannot write keyring ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  try {
    const dirHandle = await open(dir, constants.O_RDONLY);
    await dirHandle.sync().catch(() => undefined);
    await dirHandle.close();
  } catch {
    // fsync of a directory is not possible everywhere; the rename itself is still atomic.
  }
  const stamp = await fileStamp(path);
  if (stamp === undefined)
    throw new KeyError('BACKEND_UNAVAILABLE', `keyring ${path} vanished after writing`);
  return stamp;
}

/**
 * A cross-process exclusive lock beside the keyring (`<path>.lock`, created with O_EXCL and holding the pid), so two
 * processes sharing one keyring never lose each other's keys. A lock left by a dead process is taken over.
 * Written by hand: the maintained lock libraries (proper-lockfile) are CommonJS-only and add mkdir-polling for
 * network file systems we do not need; this is the classic O_EXCL lock file.
 */
export async function withKeyringLock<T>(path: string, fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const lockPath = `${path}.lock`;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      const handle = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KeyError(
          'BACKEND_UNAVAILABLE',
          `cannot lock keyring ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        );
      }
      if (await lockIsStale(lockPath)) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) {
        throw new KeyError(
          'BACKEND_UNAVAILABLE',
          `keyring ${path} is locked by another process (${lockPath})`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 100);
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

async function lockIsStale(lockPath: string): Promise<boolean> {
  let pid: number;
  try {
    const handle = await open(lockPath, constants.O_RDONLY);
    try {
      pid = Number((await handle.readFile('utf8')).trim());
    } finally {
      await handle.close();
    }
  } catch {
    return false; // vanished or unreadable: retry
  }
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    // Being written right now, or garbage: stale only when old.
    const s = await stat(lockPath).catch(() => undefined);
    return s !== undefined && Date.now() - s.mtimeMs > 30_000;
  }
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
