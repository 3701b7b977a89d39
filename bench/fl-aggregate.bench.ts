// Aggregation time for 100 clients × 1,000,000 float32 parameters (4 layers), DESIGN.md §8 "aggregation load":
// FedAvg, median, trimmed mean, Krum, Multi-Krum, against the memory-bandwidth bound measured in the same run
// (one read of the 400 MB) and, when FLOWER_SRC points at a Flower checkout and python3 + numpy are present,
// Flower's own numpy functions on the same bytes (.npz). Also: the RDP accountant for 10,000 steps.
// Every rule runs single-threaded; FedAvg, median and trimmed mean also run on an AggregationPool of
// FL_BENCH_THREADS workers (default: the machine's available parallelism), and the bandwidth bound is measured
// with the same thread count too, so each ratio compares like with like.
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import {
  AggregationPool,
  computeEpsilon,
  createNormal,
  createSeededUniform,
  fedAvg,
  krum,
  median,
  multiKrum,
  toShared,
  trimmedMean,
} from '@edgefl/fl';
import type { ClientUpdate } from '@edgefl/fl';
import type * as ReportLib from './lib/report.js';
import type { Figure } from './lib/report.js';

// Node's type stripping needs the '.ts' file name, which tsconfig (no allowImportingTsExtensions) refuses in a
// static import; a computed dynamic import keeps both happy.
const { figure, writeReport } = (await import(
  new URL('./lib/report.ts', import.meta.url).href
)) as typeof ReportLib;

const CLIENTS = Number(process.env.FL_BENCH_CLIENTS ?? 100);
const PARAMS = Number(process.env.FL_BENCH_PARAMS ?? 1_000_000);
const LAYERS = 4;
const F = Math.max(1, Math.round(CLIENTS / 10));
const M = Math.max(1, Math.round(CLIENTS / 2));
const BETA = 0.1;
const THREADS = Number(process.env.FL_BENCH_THREADS ?? availableParallelism());
const here = dirname(fileURLToPath(import.meta.url));

function makeInput(): { updates: ClientUpdate[]; buffers: Float32Array[] } {
  const normal = createNormal(createSeededUniform(2024));
  const per = PARAMS / LAYERS;
  const buffers: Float32Array[] = [];
  const updates: ClientUpdate[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const all = new Float32Array(PARAMS);
    const byz = i < F; // a crude Byzantine group, as in the test vectors
    for (let j = 0; j < PARAMS; j++) all[j] = byz ? normal() * 10 + 50 : normal();
    buffers.push(all);
    const weights = Array.from({ length: LAYERS }, (_, l) => all.subarray(l * per, (l + 1) * per));
    updates.push({ numExamples: 1 + ((i * 7919) % 1000), weights });
  }
  return { updates, buffers };
}

/** The same bytes in shared memory (one SharedArrayBuffer per client), for the pool's workers. */
function sharedCopy(updates: ClientUpdate[]): ClientUpdate[] {
  return updates.map((u) => ({ numExamples: u.numExamples, weights: toShared(u.weights) }));
}

/**
 * The read-once bound with `threads` threads: each worker reads its 1/threads of every client's coordinates
 * (from a private copy, see bench/fl/read-once-worker.ts); the time from 'go' to the last 'done', best of `repeat`.
 */
async function readOnceThreads(buffers: Float32Array[], threads: number, repeat: number): Promise<number> {
  const shared = buffers.map((b) => toShared([b])[0]!);
  const per = Math.ceil(PARAMS / threads / 16) * 16;
  const workers = Array.from(
    { length: threads },
    (_, t) =>
      new Worker(new URL('./fl/read-once-worker.ts', import.meta.url), {
        workerData: { clients: shared, from: Math.min(PARAMS, t * per), to: Math.min(PARAMS, (t + 1) * per) },
      }),
  );
  const next = (w: Worker) => new Promise<unknown>((resolve) => w.once('message', resolve));
  try {
    await Promise.all(workers.map(next)); // ready
    let best = Infinity;
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      const done = workers.map(next);
      for (const w of workers) w.postMessage('go');
      await Promise.all(done);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return best;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * One read of every input byte: native copies (memcpy, SIMD) of each client into the same 4 MB scratch buffer,
 * which stays in cache, so the time is dominated by reading the 400 MB from memory.
 */
function readOnce(buffers: Float32Array[]): number {
  const scratch = new Float32Array(buffers[0]!.length);
  for (const b of buffers) scratch.set(b);
  return scratch[0]!;
}

function seconds(fn: () => unknown, repeat = 1): number {
  let best = Infinity;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

async function secondsAsync(fn: () => Promise<unknown>, repeat = 1): Promise<number> {
  let best = Infinity;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
}

/** A stored (uncompressed) zip of .npy files, as numpy.savez writes. Written by hand: no npz writer exists for JS. */
function writeNpz(
  path: string,
  arrays: Array<{ name: string; dtype: string; data: Uint8Array; length: number }>,
): void {
  const fd = openSync(path, 'w');
  const central: Buffer[] = [];
  let offset = 0;
  const put = (b: Uint8Array) => {
    writeSync(fd, b);
    offset += b.length;
  };
  for (const a of arrays) {
    let dict = `{'descr': '${a.dtype}', 'fortran_order': False, 'shape': (${a.length},), }`;
    const pad = 64 - ((10 + dict.length + 1) % 64);
    dict = dict + ' '.repeat(pad % 64) + '\n';
    const head = Buffer.alloc(10 + dict.length);
    head.write('\x93NUMPY', 0, 'latin1');
    head[6] = 1;
    head[7] = 0;
    head.writeUInt16LE(dict.length, 8);
    head.write(dict, 10, 'latin1');
    const size = head.length + a.data.length;
    const crc = crc32(a.data, crc32(head));
    const name = Buffer.from(`${a.name}.npy`);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(size, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const at = offset;
    put(local);
    put(name);
    put(head);
    put(a.data);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(size, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(at, 42);
    central.push(cd, name);
  }
  const cdStart = offset;
  for (const b of central) put(b);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(arrays.length, 8);
  end.writeUInt16LE(arrays.length, 10);
  end.writeUInt32LE(offset - cdStart, 12);
  end.writeUInt32LE(cdStart, 16);
  put(end);
  closeSync(fd);
}

function flowerTimes(updates: ClientUpdate[]): { times: Record<string, number> | null; why: string } {
  const src = process.env.FLOWER_SRC;
  if (!src) return { times: null, why: 'FLOWER_SRC is not set' };
  if (spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status !== 0) {
    return { times: null, why: 'python3 with numpy is not available' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgefl-fl-bench-'));
  try {
    const npz = join(dir, 'input.npz');
    const arrays: Array<{ name: string; dtype: string; data: Uint8Array; length: number }> = [];
    updates.forEach((u, i) =>
      u.weights.forEach((l, k) =>
        arrays.push({
          name: `c${i}_l${k}`,
          dtype: '<f4',
          data: new Uint8Array(l.buffer, l.byteOffset, l.byteLength),
          length: l.length,
        }),
      ),
    );
    const counts = new Float64Array(updates.map((u) => u.numExamples));
    arrays.push({
      name: 'num_examples',
      dtype: '<f8',
      data: new Uint8Array(counts.buffer),
      length: counts.length,
    });
    arrays.push({
      name: 'layers',
      dtype: '<f8',
      data: new Uint8Array(Float64Array.of(LAYERS).buffer),
      length: 1,
    });
    writeNpz(npz, arrays);
    const run = spawnSync(
      'python3',
      [join(here, 'fl', 'flower_peer.py'), npz, String(F), String(M), String(BETA)],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    if (run.status !== 0)
      return { times: null, why: `the Flower runner failed: ${run.stderr.trim().split('\n').at(-1)}` };
    return { times: JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, number>, why: '' };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const load = loadavg()[0]!;
const { updates, buffers } = makeInput();
const mb = (CLIENTS * PARAMS * 4) / 1e6;
const bound = seconds(() => readOnce(buffers), 5);
const ours: Record<string, number> = {
  fedavg: seconds(() => fedAvg(updates), 3),
  median: seconds(() => median(updates)),
  'trimmed-mean': seconds(() => trimmedMean(updates, BETA)),
  krum: seconds(() => krum(updates, F)),
  'multi-krum': seconds(() => multiKrum(updates, F, M)),
};
const boundN = await readOnceThreads(buffers, THREADS, 5);
const shared = sharedCopy(updates);
const pool = new AggregationPool({ threads: THREADS });
const tiny = shared.slice(0, 3).map((u) => ({ ...u, weights: u.weights.map((l) => l.subarray(0, 64)) }));
await pool.median(tiny); // the workers are up
const pooled: Record<string, number> = {
  fedavg: await secondsAsync(() => pool.fedAvg(shared), 3),
  median: await secondsAsync(() => pool.median(shared)),
  'trimmed-mean': await secondsAsync(() => pool.trimmedMean(shared, BETA)),
};
await pool.close();
computeEpsilon({ q: 0.01, sigma: 1, steps: 10_000, delta: 1e-5 }); // warm-up
const accountant = seconds(() => computeEpsilon({ q: 0.01, sigma: 1, steps: 10_000, delta: 1e-5 }), 20);

const peer = flowerTimes(updates);
const flower = (name: string) =>
  peer.times ? { name: `Flower ${name} (numpy)`, value: peer.times[name]! } : null;
const t = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;
const figures: Figure[] = [
  figure(`read ${mb.toFixed(0)} MB once, ${t(1)} (memory-bandwidth bound)`, 's', bound),
  figure(`read ${mb.toFixed(0)} MB once, ${t(THREADS)} (memory-bandwidth bound)`, 's', boundN),
  figure(`FedAvg, ${t(1)} vs the 1-thread bandwidth bound`, 's', ours.fedavg!, {
    name: `read once, ${t(1)} (same run)`,
    value: bound,
  }),
  figure(`FedAvg, ${t(THREADS)} vs the ${THREADS}-thread bandwidth bound`, 's', pooled.fedavg!, {
    name: `read once, ${t(THREADS)} (same run)`,
    value: boundN,
  }),
];
for (const [name, time] of Object.entries(ours)) {
  figures.push(figure(`${name}, ${t(1)}: ${CLIENTS} clients x ${PARAMS} params`, 's', time, flower(name)));
  const p = pooled[name];
  if (p !== undefined) {
    figures.push(
      figure(`${name}, ${t(THREADS)}: ${CLIENTS} clients x ${PARAMS} params`, 's', p, flower(name)),
    );
  }
}
figures.push(figure('RDP accountant: epsilon for 10,000 steps (opacus grid)', 'ms', accountant * 1000));
const notes = [
  `input: ${CLIENTS} clients x ${PARAMS} float32 in ${LAYERS} layers, seeded N(0,1) with ${F} clients scaled x10+50; f=${F}, m=${M}, beta=${BETA}`,
  `edgefl: typed-array loops, single thread (ordinary ArrayBuffers) and AggregationPool(${t(THREADS)}) over a SharedArrayBuffer copy of the same bytes`,
  `bandwidth bound: native copy of each client (or each thread's coordinate range of it) into a cached scratch buffer (read once), with 1 and ${THREADS} threads, always from ordinary (non-shared) memory, where the copy is a true memcpy`,
  'timing: bandwidth bounds best of 5, FedAvg best of 3 (ours and Flower), median/trimmed mean/Krum one run each',
  `machine: ${availableParallelism()} CPUs, 1-minute load average ${load.toFixed(2)} at the start (other jobs share the CPUs)`,
  peer.times
    ? `peer: Flower legacy aggregate.py from FLOWER_SRC on the same bytes (.npz), python3 + numpy, single thread`
    : `peer skipped: ${peer.why}`,
];
writeReport({ name: 'fl-aggregate', figures, notes });
