import { describe, expect, it } from 'vitest';
import { Batcher, type Runner } from './batcher.js';
import { InferError } from './errors.js';

/** A session whose runs finish when the test says so; output = input row sums (1 output per row). */
class HeldRunner implements Runner {
  readonly runs: Array<{ rows: number; release(): void }> = [];
  constructor(private readonly inputs: number) {}

  run(input: Float32Array, rows: number): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      this.runs.push({
        rows,
        release: () => {
          if (input.includes(13)) return reject(new Error('poisoned row'));
          const out = new Float32Array(rows);
          for (let r = 0; r < rows; r++)
            for (let c = 0; c < this.inputs; c++) out[r]! += input[r * this.inputs + c]!;
          resolve(out);
        },
      });
    });
  }
}

const settle = () => new Promise((r) => setImmediate(r));
const row = (value: number) => Float32Array.of(value, value);

describe('Batcher', () => {
  const options = { inputs: 2, outputs: 1, maxBatchSize: 4, maxQueueDelayUs: 0, maxQueue: 3 };

  it('runs at once while idle, and batches what queued meanwhile into one run', async () => {
    const runner = new HeldRunner(2);
    const batches: number[] = [];
    const b = new Batcher([runner], options, { onBatch: (rows) => batches.push(rows) });
    const first = b.submit(row(1), 1);
    expect(runner.runs).toHaveLength(1);
    const queued = [b.submit(row(2), 1), b.submit(row(3), 1), b.submit(Float32Array.of(4, 4, 5, 5), 2)];
    expect(b.depth).toBe(3);
    runner.runs[0]!.release();
    expect(await first).toEqual(Float32Array.of(2));
    await settle();
    // the three queued requests (4 rows) went in one run
    expect(runner.runs).toHaveLength(2);
    expect(runner.runs[1]!.rows).toBe(4);
    runner.runs[1]!.release();
    expect(await Promise.all(queued)).toEqual([
      Float32Array.of(4),
      Float32Array.of(6),
      Float32Array.of(8, 10),
    ]);
    expect(batches).toEqual([1, 4]);
  });

  it('refuses a request when the queue is full (bounded memory), and takes new ones once it drains', async () => {
    const runner = new HeldRunner(2);
    const b = new Batcher([runner], options);
    const running = b.submit(row(1), 1);
    const queued = [b.submit(row(1), 1), b.submit(row(1), 1), b.submit(row(1), 1)];
    const error = await b.submit(row(1), 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InferError);
    expect((error as InferError).code).toBe('overloaded');
    runner.runs[0]!.release();
    await running;
    await settle();
    runner.runs[1]!.release();
    await Promise.all(queued);
    const later = b.submit(row(5), 1);
    runner.runs[2]!.release();
    expect(await later).toEqual(Float32Array.of(10));
  });

  it('a request that makes the run fail fails alone; the rest of its batch is answered', async () => {
    const runner = new HeldRunner(2);
    const b = new Batcher([runner], { ...options, maxQueue: 10 });
    const first = b.submit(row(1), 1);
    const good = b.submit(row(2), 1);
    const poisoned = b.submit(row(13), 1).catch((e: unknown) => e);
    const alsoGood = b.submit(row(3), 1);
    runner.runs[0]!.release();
    await first;
    await settle();
    runner.runs[1]!.release(); // the batch of three fails …
    // … and each is re-run alone
    for (let i = 2; i < 5; i++) {
      await settle();
      runner.runs[i]!.release();
    }
    expect(await good).toEqual(Float32Array.of(4));
    expect(await alsoGood).toEqual(Float32Array.of(6));
    expect(((await poisoned) as Error).message).toBe('poisoned row');
  });

  it('spreads batches over its sessions, and a request larger than maxBatchSize runs alone', async () => {
    const a = new HeldRunner(2);
    const c = new HeldRunner(2);
    const b = new Batcher([a, c], options);
    const big = b.submit(new Float32Array(12).fill(1), 6);
    const small = b.submit(row(1), 1);
    expect(a.runs.length + c.runs.length).toBe(2);
    const rows = [...a.runs, ...c.runs].map((r) => r.rows).sort();
    expect(rows).toEqual([1, 6]);
    for (const r of [...a.runs, ...c.runs]) r.release();
    expect(await big).toEqual(new Float32Array(6).fill(2));
    expect(await small).toEqual(Float32Array.of(2));
  });

  it('waits up to maxQueueDelayUs for company while a batch runs, and goes once the batch is full', async () => {
    const a = new HeldRunner(2);
    const c = new HeldRunner(2);
    const b = new Batcher([a, c], { ...options, maxQueue: 10, maxQueueDelayUs: 60_000_000 });
    const first = b.submit(row(1), 1); // idle: runs at once
    const rest = [b.submit(row(2), 1), b.submit(row(3), 1), b.submit(row(4), 1)];
    // a session is free, but a batch is running: they wait for company
    expect(b.depth).toBe(3);
    expect(a.runs.length + c.runs.length).toBe(1);
    rest.push(b.submit(row(5), 1)); // four rows queued: the batch is full and goes
    expect(b.depth).toBe(0);
    const runs = [...a.runs, ...c.runs];
    expect(runs.map((r) => r.rows).sort()).toEqual([1, 4]);
    for (const r of runs) r.release();
    expect(await first).toEqual(Float32Array.of(2));
    expect(await Promise.all(rest)).toEqual([4, 6, 8, 10].map((v) => Float32Array.of(v)));
  });

  it('drains: refuses new requests, finishes queued and running ones', async () => {
    const runner = new HeldRunner(2);
    const b = new Batcher([runner], options);
    const running = b.submit(row(1), 1);
    const queued = b.submit(row(2), 1);
    let drained = false;
    const drain = b.drain().then(() => (drained = true));
    await expect(b.submit(row(3), 1)).rejects.toMatchObject({ code: 'unavailable' });
    runner.runs[0]!.release();
    await running;
    await settle();
    expect(drained).toBe(false);
    runner.runs[1]!.release();
    await queued;
    await drain;
    expect(drained).toBe(true);
  });

  it('refuses a tensor whose length does not match its rows', async () => {
    const b = new Batcher([new HeldRunner(2)], options);
    await expect(b.submit(Float32Array.of(1, 2, 3), 1)).rejects.toMatchObject({ code: 'bad-input' });
  });
});
