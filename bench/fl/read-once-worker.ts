// One thread of the N-thread memory-bandwidth bound of bench/fl-aggregate.bench.ts. It copies its coordinate
// range of every client into private (non-shared) memory once, untimed: the same native copy out of a
// SharedArrayBuffer measured ~30 % slower here (no plain memcpy on shared memory), which would flatter every
// ratio to the bound.
// Then, on each 'go', it reads those bytes once with native copies into one cached scratch buffer.
import { parentPort, workerData } from 'node:worker_threads';

const { clients, from, to } = workerData as { clients: Float32Array[]; from: number; to: number };
const own = clients.map((c) => c.slice(from, to)); // slice of a shared view: a new, non-shared buffer
const scratch = new Float32Array(to - from);
const port = parentPort!;
port.on('message', () => {
  for (const o of own) scratch.set(o);
  port.postMessage(scratch[0] ?? 0);
});
port.postMessage('ready');
