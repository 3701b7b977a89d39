// Worker thread of AggregationPool: runs the shared kernels over its coordinate segments of inputs and outputs
// that live in SharedArrayBuffers (the pool posts views; nothing is copied). Erasable TypeScript only: when the
// pool runs from source (tests), Node loads this file with its own type stripping.
import { parentPort } from 'node:worker_threads';
import {
  COL_TILE,
  columnScratch,
  medianRange,
  SUM_TILE,
  trimmedMeanRange,
  weightedSumRange,
} from './kernels.js';

/** [layer, from, to): a coordinate range of one layer. */
export type Segment = [number, number, number];

interface JobBase {
  id: number;
  /** cols[l][i] = layer l of client i (shared views). */
  cols: Float32Array[][];
  /** The work, cut into chunks; every worker of the job claims the next unclaimed one until none is left. */
  chunks: Segment[][];
  /** Shared counter: index of the next unclaimed chunk (Atomics). */
  next: Int32Array;
}

export type WorkerJob =
  | (JobBase & { op: 'median'; out: Float32Array[] })
  | (JobBase & { op: 'trimmed-mean'; out: Float32Array[]; cut: number })
  | (JobBase & { op: 'fedavg'; out: Float32Array[]; coef: number[]; outScale: number });

export interface WorkerReply {
  id: number;
  /** false when a kernel met a non-finite value (the pool then reports the exact error on its own thread). */
  ok: boolean;
  /** An unexpected failure inside the worker. */
  error?: string;
}

let colScratch: Float64Array = new Float64Array(0);
let sumScratch: Float64Array = new Float64Array(0);

function runSegment(job: WorkerJob, l: number, from: number, to: number): boolean {
  const cols = job.cols[l]!;
  switch (job.op) {
    case 'median':
      return medianRange(cols, job.out[l]!, from, to, colScratch);
    case 'trimmed-mean':
      return trimmedMeanRange(cols, job.cut, job.out[l]!, from, to, colScratch);
    case 'fedavg':
      return weightedSumRange(cols, job.coef, job.outScale, job.out[l]!, from, to, sumScratch);
  }
}

/**
 * Claims chunks until none is left (dynamic scheduling: a worker whose core is busy with other processes simply
 * takes fewer chunks). On a non-finite input it stops the whole job by exhausting the counter.
 */
function run(job: WorkerJob): boolean {
  const n = job.cols[0]?.length ?? 0;
  if (colScratch.length < COL_TILE * n) colScratch = columnScratch(n);
  if (sumScratch.length < SUM_TILE) sumScratch = new Float64Array(SUM_TILE);
  const total = job.chunks.length;
  for (;;) {
    const c = Atomics.add(job.next, 0, 1);
    if (c >= total) return true;
    for (const [l, from, to] of job.chunks[c]!) {
      if (!runSegment(job, l, from, to)) {
        Atomics.store(job.next, 0, total);
        return false;
      }
    }
  }
}

const port = parentPort;
if (!port) throw new Error('aggregation-worker runs only as a worker thread of AggregationPool');
port.on('message', (job: WorkerJob) => {
  let reply: WorkerReply;
  try {
    reply = { id: job.id, ok: run(job) };
  } catch (err) {
    reply = { id: job.id, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
