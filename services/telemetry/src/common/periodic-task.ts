import type { Logger } from 'pino';

/**
 * A job the telemetry runs on a cadence (rollout health, drift, SLOs): one run at a time (a tick while one runs waits
 * for it and returns `idle`), a failed run logged and retried at the next tick, the timer unref'd, and `stop()`
 * waiting for the run in flight.
 */
export class PeriodicTask<T> {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<T> | null = null;

  constructor(
    private readonly what: string,
    private readonly run: () => Promise<T>,
    private readonly idle: T,
    private readonly logger: Logger,
  ) {}

  start(intervalMs: number): void {
    this.#timer = setInterval(() => void this.tick(), intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  tick(): Promise<T> {
    if (this.#running) return this.#running.then(() => this.idle);
    const run = this.run()
      .catch((error: unknown) => {
        this.logger.error({ err: error }, `${this.what} failed; retried at the next tick`);
        return this.idle;
      })
      .finally(() => {
        this.#running = null;
      });
    this.#running = run;
    return run;
  }
}
