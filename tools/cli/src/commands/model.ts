import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { extname } from 'node:path';
import {
  applyDelta,
  createDelta,
  DeltaError,
  ModelFormatError,
  readDeltaHeader,
  type TensorFileFormat,
} from '@edgefl/model';
import type { Command } from 'commander';
import { UsageError } from '../usage-error.js';

function readInput(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new UsageError(
      `cannot read ${what} ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/** Writes next to the destination and renames, so a failed write never leaves a partial file under the name. */
function writeOutput(path: string, bytes: Uint8Array): void {
  const temp = `${path}.partial-${process.pid}`;
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch (error) {
    throw new UsageError(`cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** `*.f32` files are raw little-endian float32; anything else is an edgefl artifact or an ONNX model (sniffed). */
export function formatOf(path: string): TensorFileFormat | 'auto' {
  return extname(path).toLowerCase() === '.f32' ? 'f32' : 'auto';
}

function asUsage(error: unknown, context: string): never {
  if (error instanceof DeltaError || error instanceof ModelFormatError)
    throw new UsageError(`${context}: ${error.message}`);
  throw error;
}

export interface ModelDeltaOptions {
  from: string;
  to: string;
  out: string;
  maxRelError?: number;
}

/** Builds a delta file; returns the one-line summary the command prints. */
export function deltaFiles(options: ModelDeltaOptions): string {
  const fromFormat = formatOf(options.from);
  const toFormat = formatOf(options.to);
  if (fromFormat !== toFormat)
    throw new UsageError('--from and --to must both be .f32 files, or both model files');
  const source = readInput(options.from, '--from');
  const target = readInput(options.to, '--to');
  let result;
  try {
    result = createDelta(source, target, {
      format: toFormat,
      ...(options.maxRelError === undefined ? {} : { maxRelError: options.maxRelError }),
    });
  } catch (error) {
    asUsage(error, 'cannot diff these files');
  }
  writeOutput(options.out, result.delta);
  const percent = ((100 * result.delta.byteLength) / Math.max(1, target.byteLength)).toFixed(2);
  const what =
    result.mode === 'full'
      ? 'full copy (a delta would not be smaller)'
      : result.mode === 'bounded'
        ? `bounded-error delta, relative update error ${result.relError.toExponential(3)}`
        : 'lossless delta';
  return `wrote ${options.out}: ${result.delta.byteLength} bytes (${percent}% of ${target.byteLength}), ${what}; rebuilds sha256 ${result.targetSha256}`;
}

export interface ModelPatchOptions {
  from: string;
  delta: string;
  out: string;
}

/** Applies a delta file; the output is written only after its sha256 matched. */
export function patchFiles(options: ModelPatchOptions): string {
  const source = readInput(options.from, '--from');
  const delta = readInput(options.delta, '--delta');
  let out: Uint8Array;
  let header;
  try {
    header = readDeltaHeader(delta);
    out = applyDelta(source, delta);
  } catch (error) {
    asUsage(error, `cannot apply ${options.delta} to ${options.from}`);
  }
  writeOutput(options.out, out);
  return `wrote ${options.out}: ${out.byteLength} bytes, sha256 ${header.target.sha256} verified (${header.mode})`;
}

function parseRelError(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n >= 1) {
    throw new UsageError(`--max-rel-error must be a number in (0, 1), got '${value}'`);
  }
  return n;
}

export function register(program: Command): void {
  const model = program
    .command('model')
    .description(
      'model files: tensor-aware deltas between versions of an ONNX model, edgefl artifact or .f32 file',
    );
  model
    .command('delta')
    .description('build a delta from --from to --to (lossless unless --max-rel-error is given)')
    .requiredOption('--from <file>', 'the version the device has (.onnx, edgefl artifact, or .f32)')
    .requiredOption('--to <file>', 'the new version')
    .requiredOption('--out <file>', 'the delta to write')
    .option('--max-rel-error <e>', 'bounded-error mode: relative L2 error of the update stays ≤ e')
    .action((opts: Record<string, string>) => {
      const line = deltaFiles({
        from: opts['from']!,
        to: opts['to']!,
        out: opts['out']!,
        ...(opts['maxRelError'] === undefined ? {} : { maxRelError: parseRelError(opts['maxRelError']) }),
      });
      process.stdout.write(`${line}\n`);
    });
  model
    .command('patch')
    .description('rebuild the new version from --from and a delta; checks its sha256 before writing --out')
    .requiredOption('--from <file>', 'the version the delta was built from')
    .requiredOption('--delta <file>', 'the delta')
    .requiredOption('--out <file>', 'where to write the rebuilt version')
    .action((opts: Record<string, string>) => {
      process.stdout.write(
        `${patchFiles({ from: opts['from']!, delta: opts['delta']!, out: opts['out']! })}\n`,
      );
    });
}
