import { InferError } from './errors.js';

/** One session of a model version: runs `rows` rows of `inputs` values, answers `rows` rows of `outputs` values. */
export interface Runner {
  run(input: Float32Array, rows: number): Promise<Float32Array>;
}

export interface BatcherOptions {
  /** Values per input row and per output row. */
  inputs: number;
  outputs: number;
  /** Most rows one session run takes (a request with more rows runs alone). */
  maxBatchSize: number;
  /** Longest a request waits for others to join its batch while another batch is running (µs). */
  maxQueueDelayUs: number;
  /** Requests waiting at most; one more is refused ('overloaded'). */
  maxQueue: number;
}

export interface BatcherHooks {
  /** After each session run: its rows and requests. */
  onBatch?(rows: number, requests: number): void;
  /** When the number of waiting requests changes. */
  onDepth?(depth: number): void;
}

interface Pending {
  input: Float32Array;
  rows: number;
  enqueuedAt: number;
  resolve(output: Float32Array): void;
  reject(error: unknown): void;
}

/**
 * Dynamic micro-batching over a pool of sessions (Triton's dynamic batcher, written here because no npm library
 * batches over onnxruntime sessions): requests wait in a bounded FIFO; a free session takes the longest prefix of
 * the queue that fits `maxBatchSize` rows. While every session is idle a request runs at once (waiting would only
 * add latency, there is nothing to batch it with); while a batch runs, the queue fills, and the next free session
 * takes it once it holds `maxBatchSize` rows or its oldest request has waited `maxQueueDelayUs`. A batch whose run
 * fails is re-run one request at a time, so one bad request fails alone.
 */
export class Batcher {
  readonly #free: Runner[];
  readonly #queue: Pending[] = [];
  readonly #options: BatcherOptions;
  readonly #hooks: BatcherHooks;
  #queuedRows = 0;
  #running = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  #drained: Array<() => void> = [];

  constructor(runners: readonly Runner[], options: BatcherOptions, hooks: BatcherHooks = {}) {
    if (runners.length === 0) throw new Error('a batcher needs at least one session');
    this.#free = [...runners];
    this.#options = options;
    this.#hooks = hooks;
  }

  /** Requests waiting for a session. */
  get depth(): number {
    return this.#queue.length;
  }

  /** Session runs in progress. */
  get running(): number {
    return this.#running;
  }

  /** Queues `rows` rows; resolves with `rows × outputs` values. Refuses when the queue is full or closed. */
  submit(input: Float32Array, rows: number): Promise<Float32Array> {
    if (this.#closed) return Promise.reject(new InferError('unavailable', 'this model version is unloading'));
    if (!Number.isSafeInteger(rows) || rows < 1 || input.length !== rows * this.#options.inputs)
      return Promise.reject(
        new InferError('bad-input', `expected ${rows} × ${this.#options.inputs} values, got ${input.length}`),
      );
    if (this.#queue.length >= this.#options.maxQueue)
      return Promise.reject(
        new InferError(
          'overloaded',
          `the queue of this model version is full (${this.#options.maxQueue} requests waiting); retry later`,
        ),
      );
    return new Promise<Float32Array>((resolve, reject) => {
      this.#queue.push({ input, rows, enqueuedAt: performance.now(), resolve, reject });
      this.#queuedRows += rows;
      this.#hooks.onDepth?.(this.#queue.length);
      this.#schedule();
    });
  }

  /** Stops taking requests; resolves once every queued and running request has finished. */
  drain(): Promise<void> {
    this.#closed = true;
    // a request waiting for company runs now: nothing new will join it
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#schedule();
    if (this.#queue.length === 0 && this.#running === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  #schedule(): void {
    while (this.#free.length > 0 && this.#queue.length > 0) {
      const oldest = this.#queue[0]!;
      const waitedUs = (performance.now() - oldest.enqueuedAt) * 1000;
      const full = this.#queuedRows >= this.#options.maxBatchSize;
      const idle = this.#running === 0;
      if (!full && !idle && waitedUs < this.#options.maxQueueDelayUs && !this.#closed) {
        this.#timer ??= setTimeout(
          () => {
            this.#timer = null;
            this.#schedule();
          },
          Math.max(0, (this.#options.maxQueueDelayUs - waitedUs) / 1000),
        );
        return;
      }
      this.#dispatch(this.#free.pop()!, this.#take());
    }
  }

  #take(): Pending[] {
    const batch: Pending[] = [this.#queue.shift()!];
    let rows = batch[0]!.rows;
    while (this.#queue.length > 0 && rows + this.#queue[0]!.rows <= this.#options.maxBatchSize) {
      const next = this.#queue.shift()!;
      rows += next.rows;
      batch.push(next);
    }
    this.#queuedRows -= rows;
    this.#hooks.onDepth?.(this.#queue.length);
    return batch;
  }

  #dispatch(runner: Runner, batch: Pending[]): void {
    this.#running++;
    void this.#runBatch(runner, batch).finally(() => {
      this.#running--;
      this.#free.push(runner);
      if (this.#queue.length > 0) this.#schedule();
      else if (this.#running === 0 && this.#closed) for (const done of this.#drained.splice(0)) done();
    });
  }

  async #runBatch(runner: Runner, batch: Pending[]): Promise<void> {
    const { inputs, outputs } = this.#options;
    if (batch.length === 1) {
      const only = batch[0]!;
      try {
        const out = await runner.run(only.input, only.rows);
        this.#hooks.onBatch?.(only.rows, 1);
        only.resolve(checkOutput(out, only.rows, outputs));
      } catch (error) {
        only.reject(error);
      }
      return;
    }
    const rows = batch.reduce((n, p) => n + p.rows, 0);
    const input = new Float32Array(rows * inputs);
    let at = 0;
    for (const p of batch) {
      input.set(p.input, at);
      at += p.input.length;
    }
    let output: Float32Array;
    try {
      output = checkOutput(await runner.run(input, rows), rows, outputs);
    } catch {
      // isolate the request that makes the run fail: each one alone, on this session
      for (const p of batch) {
        try {
          p.resolve(checkOutput(await runner.run(p.input, p.rows), p.rows, outputs));
          this.#hooks.onBatch?.(p.rows, 1);
        } catch (error) {
          p.reject(error);
        }
      }
      return;
    }
    this.#hooks.onBatch?.(rows, batch.length);
    let row = 0;
    for (const p of batch) {
      p.resolve(output.slice(row * outputs, (row + p.rows) * outputs));
      row += p.rows;
    }
  }
}

function checkOutput(output: Float32Array, rows: number, outputs: number): Float32Array {
  if (output.length !== rows * outputs)
    throw new InferError(
      'internal',
      `the model answered ${output.length} values for ${rows} rows of ${outputs} outputs`,
    );
  return output;
}
