import { constants, statSync } from 'node:fs';
import { link, mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
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

/**
 * The same, synchronously: what a reader checks before each use to notice another process's rotation. A stat of a
 * local file takes under a microsecond; through the thread pool (fs/promises) it costs ~18 µs of round trip, half
 * the time of the signature it guards.
 */
export function fileStampSync(path: string): FileStamp | undefined {
  const s = statSync(path, { throwIfNoEntry: false });
  return s === undefined ? undefined : { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
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

/** Test seams of {@link withKeyringLock} (internal: not exported from the package). */
export interface KeyringLockHooks {
  /** This contender judged the lock stale and is about to try to take it over. */
  staleJudged?: () => Promise<void> | void;
  /** This contender found the lock held (or a take-over under way) and is about to wait before trying again. */
  waiting?: () => void;
}

export interface KeyringLockOptions {
  /** How long to wait for a live holder before failing with BACKEND_UNAVAILABLE (default 10 s). */
  timeoutMs?: number;
  hooks?: KeyringLockHooks;
}

/** A take-over lock is held for a re-check and one replace: one older than this was left by a dead process. */
const TAKEOVER_STALE_MS = 5_000;
/** A lock file without a readable pid is being written right now, or was left by a process that died doing so. */
const UNREADABLE_LOCK_STALE_MS = 30_000;

/** Which file a path named when it was looked at: device, inode, modification time and the pid text it held. */
interface LockFileIdentity {
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
  content: string;
}

function sameLockFile(a: LockFileIdentity, b: LockFileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.mtimeNs === b.mtimeNs && a.content === b.content;
}

/**
 * A cross-process exclusive lock beside the keyring (`<path>.lock`, created with O_EXCL and holding the pid), so two
 * processes sharing one keyring never lose each other's keys. A lock left by a dead process is taken over.
 * Written by hand: the maintained lock libraries (proper-lockfile) are CommonJS-only and judge staleness by age with
 * an mtime heartbeat, which a long fsync can outlive; this is the classic O_EXCL lock file, plus a safe take-over.
 *
 * Why exactly one process takes over a stale lock, and a live lock is never removed by another process:
 * - The main lock is removed only (a) by its holder when done, or (b) by a process holding the take-over lock
 *   `<path>.lock.takeover` (O_EXCL), after it re-read the main lock UNDER the take-over lock and found a dead pid.
 * - Nobody else can remove or replace the main lock while the take-over holder looks at it: its owner is dead (so
 *   it does not release), O_EXCL creation fails while it exists, and no second take-over runs (the take-over lock is
 *   exclusive). So the file it re-judged stale is still the file it removes, never a fresh lock created after a
 *   first take-over — the race of the unguarded "both see a dead owner, both unlink" version.
 * - Removal is "move aside, then check": the file is renamed to a unique name and its identity (device, inode,
 *   mtime, pid text) compared with the one judged; a mismatch is put back (link, which never overwrites). This keeps
 *   even an inconsistent judgement from deleting another process's file.
 * - The take-over lock itself cannot be judged by pid (contenders in one process share it) and is held only for a
 *   few file operations, so it is stale by age alone (> TAKEOVER_STALE_MS; its holder died). It is removed the same
 *   checked way, and a take-over holder acts only if its take-over file is still in place and it has held it for
 *   less than half that age, so a holder stalled long enough to be presumed dead gives up instead of acting late.
 * After a take-over the winner does not hold the lock: it competes with every other contender in the ordinary
 * O_EXCL create, which exactly one wins.
 */
export async function withKeyringLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: KeyringLockOptions = {},
): Promise<T> {
  const lockPath = `${path}.lock`;
  const takeoverPath = `${lockPath}.takeover`;
  const hooks = options.hooks ?? {};
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let delay = 5;
  let mine: LockFileIdentity;
  for (;;) {
    const created = await createLockFile(lockPath, path);
    if (created) {
      mine = created;
      break;
    }
    const seen = await inspectLock(lockPath);
    if (seen.state === 'missing') continue; // released meanwhile: try again at once
    if (seen.state === 'stale') {
      await hooks.staleJudged?.();
      const outcome = await takeOver(lockPath, takeoverPath, path);
      if (outcome === 'removed' || outcome === 'missing') continue;
    }
    if (Date.now() > deadline) {
      throw new KeyError('BACKEND_UNAVAILABLE', `keyring ${path} is locked by another process (${lockPath})`);
    }
    hooks.waiting?.();
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 100);
  }
  try {
    return await fn();
  } finally {
    await removeIfSame(lockPath, mine).catch(() => undefined);
  }
}

/** Under the take-over lock: re-checks the main lock and removes it when it is (still) stale. */
async function takeOver(
  lockPath: string,
  takeoverPath: string,
  path: string,
): Promise<'removed' | 'missing' | 'busy' | 'live'> {
  const takeover = await createLockFile(takeoverPath, path);
  if (!takeover) {
    // Another contender is taking over right now, or one died doing so long ago.
    const left = await identify(takeoverPath);
    if (left && Date.now() - Number(left.mtimeNs / 1_000_000n) > TAKEOVER_STALE_MS) {
      await removeIfSame(takeoverPath, left);
    }
    return 'busy';
  }
  const heldSince = performance.now();
  try {
    const seen = await inspectLock(lockPath);
    if (seen.state !== 'stale') return seen.state;
    // Act only while this take-over lock is certainly ours (see withKeyringLock).
    const current = await identify(takeoverPath);
    if (
      !current ||
      !sameLockFile(current, takeover) ||
      performance.now() - heldSince > TAKEOVER_STALE_MS / 2
    ) {
      return 'busy';
    }
    return (await removeIfSame(lockPath, seen.identity)) ? 'removed' : 'busy';
  } finally {
    await removeIfSame(takeoverPath, takeover).catch(() => undefined);
  }
}

/** Creates a lock file with O_EXCL holding our pid; undefined when it exists already. */
async function createLockFile(lockPath: string, path: string): Promise<LockFileIdentity | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(lockPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw lockError(path, error);
  }
  const content = String(process.pid);
  try {
    await handle.writeFile(content);
    const s = await handle.stat({ bigint: true });
    await handle.close();
    return { dev: s.dev, ino: s.ino, mtimeNs: s.mtimeNs, content };
  } catch (error) {
    // Our own file, half written (e.g. a full disk): remove it rather than leave a lock that needs a take-over.
    await handle.close().catch(() => undefined);
    await unlink(lockPath).catch(() => undefined);
    throw lockError(path, error);
  }
}

function lockError(path: string, error: unknown): KeyError {
  return new KeyError(
    'BACKEND_UNAVAILABLE',
    `cannot lock keyring ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
  );
}

/** The identity of the file a path names now, read through one handle; undefined when there is none. */
async function identify(file: string): Promise<LockFileIdentity | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch {
    return undefined; // vanished (or unreadable: then it is never judged stale, and the wait times out clearly)
  }
  try {
    const s = await handle.stat({ bigint: true });
    const content = (await handle.readFile('utf8')).slice(0, 64);
    return { dev: s.dev, ino: s.ino, mtimeNs: s.mtimeNs, content };
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

async function inspectLock(
  lockPath: string,
): Promise<{ state: 'missing' | 'live' } | { state: 'stale'; identity: LockFileIdentity }> {
  const identity = await identify(lockPath);
  if (!identity) {
    // Gone, or there but unreadable (which waiting will not fix: let the timeout say so).
    return (await fileStamp(lockPath)) === undefined ? { state: 'missing' } : { state: 'live' };
  }
  const text = identity.content.trim();
  const pid = /^[1-9][0-9]{0,9}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(pid)) {
    // Being written right now, or garbage: stale only when old.
    const ageMs = Date.now() - Number(identity.mtimeNs / 1_000_000n);
    return ageMs > UNREADABLE_LOCK_STALE_MS ? { state: 'stale', identity } : { state: 'live' };
  }
  if (pid === process.pid) return { state: 'live' };
  try {
    process.kill(pid, 0);
    return { state: 'live' };
  } catch (error) {
    // EPERM: the process exists (another user's); only ESRCH says it is gone.
    return (error as NodeJS.ErrnoException).code === 'ESRCH'
      ? { state: 'stale', identity }
      : { state: 'live' };
  }
}

/**
 * Removes `file` only if it is still the file identified earlier: moves it aside under a unique name (atomic),
 * compares, and deletes it or puts it back (link, which fails rather than overwrite a newer file). POSIX has no
 * "unlink if inode is X", and a plain check-then-unlink could delete a file created between the two steps.
 */
async function removeIfSame(file: string, expected: LockFileIdentity): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.removing`;
  try {
    await rename(file, aside);
  } catch {
    return false; // already gone
  }
  const moved = await identify(aside);
  if (moved && sameLockFile(moved, expected)) {
    await unlink(aside).catch(() => undefined);
    return true;
  }
  await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return false;
}
