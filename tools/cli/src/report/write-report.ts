import { rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { DemoSummary } from '../demo/summary.js';
import { UsageError } from '../usage-error.js';
import { renderReport } from './render.js';

/**
 * Renders the report and writes it to `path` through a temporary file and a rename, so a failed write never leaves
 * half a report where a whole one was. A directory that does not exist or cannot be written is bad input.
 */
export async function writeReport(summary: DemoSummary, path: string): Promise<{ bytes: number }> {
  const html = renderReport(summary);
  const temporary = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, html, 'utf8');
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? `the directory ${dirname(path)} does not exist`
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES' || code === 'EPERM'
            ? 'permission denied'
            : String(code ?? (error as Error).message);
    throw new UsageError(`cannot write the report ${path}: ${why}`);
  }
  return { bytes: Buffer.byteLength(html) };
}
