import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** fsync of a directory, so a rename inside it survives a power loss. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes and fsyncs a file under a temporary name (created exclusively; a leftover of a crash is replaced). */
export function writeDurable(path: string, bytes: Uint8Array): void {
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', 0o600);
  try {
    let at = 0;
    while (at < bytes.byteLength) at += writeSync(fd, bytes, at, bytes.byteLength - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Atomic replace: write `path.tmp`, fsync, rename over `path`, fsync the directory. After a crash at any point
 * `path` holds either its old or its new content, never a mix. `step` is called between the stages (observability,
 * and the fault-injection tests' kill points).
 */
export function replaceAtomically(
  path: string,
  bytes: Uint8Array,
  step: (name: 'written' | 'renamed' | 'synced') => void = () => {},
): void {
  const temp = `${path}.tmp`;
  writeDurable(temp, bytes);
  step('written');
  renameSync(temp, path);
  step('renamed');
  fsyncDir(dirname(path));
  step('synced');
}
