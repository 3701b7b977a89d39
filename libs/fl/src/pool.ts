import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Segment, WorkerJob, WorkerReply } from './aggregation-worker.js';
import { layerOf, structuralShape, throwFirstInvalid, trimCount } from './checks.js';
import { InvalidParameterError } from './errors.js';
import { fedAvg } from './fedavg.js';
import { median, trimmedMean } from './robust.js';
import type { AggregateResult, ClientUpdate, Weights } from './types.js';
import { assertValidUpdates, sizeOf, type UpdateConstraints } from './validate.js';

export interface AggregationPoolOptions {
  /** Worker threads (default: `os.availableParallelism()`). */
  threads?: number;
}

/** Coordinates per segment boundary: 16 float32 = one 64-byte cache line, so workers never share an output line. */
const ALIGN = 16;
/** Chunks per worker (claimed dynamically), and the smallest chunk worth a claim. */
const CHUNKS_PER_THREAD = 16;
const MIN_CHUNK = 4096;

/** True when every layer of every update is a view over a SharedArrayBuffer (what the pool's workers can read). */
export function isShared(updates: readonly ClientUpdate[]): boolean {
  return updates.every((u) => u.weights.every((l) => l.buffer instanceof SharedArrayBuffer));
}

/**
 * Zeroed layers of the given lengths in one SharedArrayBuffer (each layer starts on a 64-byte boundary):
 * decode received updates straight into these, and the pool's workers read them without a copy.
 */
export function sharedWeights(shape: readonly number[]): Weights {
  for (const len of shape) {
    if (!Number.isInteger(len) || len < 0) throw new InvalidParameterError(`bad layer length ${String(len)}`);
  }
  const offsets: number[] = [];
  let total = 0;
  for (const len of shape) {
    offsets.push(total);
    total += Math.ceil(len / ALIGN) * ALIGN;
  }
  const sab = new SharedArrayBuffer(total * 4);
  return shape.map((len, l) => new Float32Array(sab, offsets[l]! * 4, len));
}

/** A copy of `weights` in shared memory (see `sharedWeights`). */
export function toShared(weights: readonly Float32Array[]): Weights {
  const out = sharedWeights(weights.map((l) => l.length));
  out.forEach((l, i) => l.set(weights[i]!));
  return out;
}

/** Splits the coordinates of all layers into `parts` contiguous runs of nearly equal size (cache-line aligned). */
function split(shape: readonly number[], parts: number): Segment[][] {
  const per = Math.ceil(sizeOf(shape) / parts / ALIGN) * ALIGN;
  const out: Segment[][] = [[]];
  let room = per;
  shape.forEach((len, l) => {
    let from = 0;
    while (from < len) {
      if (room === 0 && out.length < parts) {
        out.push([]);
        room = per;
      }
      const to = out.length < parts ? Math.min(len, from + room) : len;
      out.at(-1)!.push([l, from, to]);
      room = Math.max(0, room - (to - from));
      from = to;
    }
  });
  return out;
}

type Pending = { resolve: (ok: boolean) => void; reject: (err: Error) => void };

// Loads the worker from source (tests under Vitest): Node strips the types itself, and this hook maps the
// NodeNext-style './x.js' imports of a .ts file to './x.ts'. CommonJS because eval'd worker code is a script.
const SOURCE_BOOTSTRAP = `
const { registerHooks } = require('node:module');
const { existsSync } = require('node:fs');
const { fileURLToPath } = require('node:url');
const { workerData } = require('node:worker_threads');
registerHooks({
  resolve(specifier, context, next) {
    if (specifier.startsWith('.') && specifier.endsWith('.js') && context.parentURL?.endsWith('.ts')) {
      const ts = new URL(specifier.slice(0, -3) + '.ts', context.parentURL);
      if (existsSync(fileURLToPath(ts))) return next(ts.href, context);
    }
    return next(specifier, context);
  },
});
import(workerData.entry);
`;

function spawn(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    const entry = new URL('./aggregation-worker.ts', here).href;
    return new Worker(SOURCE_BOOTSTRAP, { eval: true, workerData: { entry } });
  }
  return new Worker(new URL('./aggregation-worker.js', here));
}

/**
 * Worker threads that run FedAvg, the coordinate-wise median and the trimmed mean over disjoint coordinate
 * ranges of updates held in SharedArrayBuffers (see `sharedWeights` / `toShared`): workers get shared views,
 * never copies. The coordinates are cut into chunks that the workers claim through a shared counter, so a worker
 * slowed by other processes on its core takes fewer of them. Each coordinate is computed by the same kernel, in the same order, as the single-threaded
 * `fedAvg` / `median` / `trimmedMean`, so results are bit-for-bit equal to theirs, and bad input gets exactly
 * their errors. Updates not in shared memory are aggregated by those functions on the calling thread.
 * Results are views over a SharedArrayBuffer. Idle workers do not keep the process alive; `close()` ends them.
 */
export class AggregationPool {
  readonly threads: number;
  private readonly workers: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private failure: Error | null = null;

  constructor(options: AggregationPoolOptions = {}) {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw new InvalidParameterError(`threads must be an integer in [1, 256], got ${String(threads)}`);
    }
    this.threads = threads;
    this.workers = Array.from({ length: threads }, () => {
      const w = spawn();
      w.on('message', (reply: WorkerReply) => this.settle(reply));
      w.on('error', (err: Error) => this.fail(new Error(`aggregation worker failed: ${err.message}`)));
      w.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`aggregation worker exited (code ${code})`));
      });
      w.unref();
      return w;
    });
  }

  /** FedAvg (as `fedAvg`), coordinates split over the workers. */
  async fedAvg(
    updates: readonly ClientUpdate[],
    constraints: UpdateConstraints = {},
  ): Promise<AggregateResult> {
    this.usable();
    const shape = assertValidUpdates(updates, { ...constraints, skipFiniteCheck: true });
    if (!isShared(updates)) return fedAvg(updates, constraints);
    const coef = updates.map((u) => u.numExamples);
    const total = coef.reduce((a, b) => a + b, 0);
    const out = sharedWeights(shape);
    if (!(await this.run(updates, shape, { op: 'fedavg', out, coef, outScale: 1 / total }))) {
      return fedAvg(updates, constraints); // throws the single-threaded error (first bad update)
    }
    if (constraints.maxNorm !== undefined) assertValidUpdates(updates, constraints);
    return { weights: out };
  }

  /** Coordinate-wise median (as `median`), coordinates split over the workers. */
  async median(updates: readonly ClientUpdate[]): Promise<AggregateResult> {
    this.usable();
    const constraints = { requireNumExamples: false };
    const shape = structuralShape(updates, constraints);
    if (!isShared(updates)) return median(updates);
    const out = sharedWeights(shape);
    if (!(await this.run(updates, shape, { op: 'median', out }))) throwFirstInvalid(updates, constraints);
    return { weights: out };
  }

  /** Coordinate-wise trimmed mean (as `trimmedMean`), coordinates split over the workers. */
  async trimmedMean(updates: readonly ClientUpdate[], beta: number): Promise<AggregateResult> {
    this.usable();
    const constraints = { requireNumExamples: false };
    const shape = structuralShape(updates, constraints);
    const cut = trimCount(updates.length, beta);
    if (!isShared(updates)) return trimmedMean(updates, beta);
    const out = sharedWeights(shape);
    if (!(await this.run(updates, shape, { op: 'trimmed-mean', out, cut })))
      throwFirstInvalid(updates, constraints);
    return { weights: out };
  }

  /** Ends the workers; pending calls are rejected. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rejectAll(new InvalidParameterError('the aggregation pool was closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private usable(): void {
    if (this.closed) throw new InvalidParameterError('the aggregation pool is closed');
    if (this.failure) throw this.failure;
  }

  private async run(
    updates: readonly ClientUpdate[],
    shape: readonly number[],
    job: DistributiveOmit<WorkerJob, 'id' | 'cols' | 'chunks' | 'next'>,
  ): Promise<boolean> {
    const cols = shape.map((_, l) => layerOf(updates, l));
    const chunks = split(
      shape,
      Math.max(1, Math.min(this.threads * CHUNKS_PER_THREAD, Math.ceil(sizeOf(shape) / MIN_CHUNK))),
    );
    const next = new Int32Array(new SharedArrayBuffer(4));
    const workers = this.workers.slice(0, chunks.length);
    if (this.pending.size === 0) for (const w of this.workers) w.ref();
    try {
      const results = await Promise.all(
        workers.map(
          (worker) =>
            new Promise<boolean>((resolve, reject) => {
              const id = this.nextId++;
              this.pending.set(id, { resolve, reject });
              worker.postMessage({ ...job, id, cols, chunks, next } as WorkerJob);
            }),
        ),
      );
      return results.every(Boolean);
    } finally {
      if (this.pending.size === 0 && !this.closed) for (const w of this.workers) w.unref();
    }
  }

  private settle(reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.error !== undefined) p.reject(new Error(`aggregation worker: ${reply.error}`));
    else p.resolve(reply.ok);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.rejectAll(err);
  }

  private rejectAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
