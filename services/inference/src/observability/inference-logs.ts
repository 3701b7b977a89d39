import type { KafkaTopicValues, TypedBus } from '@edgefl/bus';
import { KAFKA_TOPICS, type InferenceLog } from '@edgefl/contracts';
import type { Logger } from 'pino';
import type { InferenceMetrics } from './inference-metrics.js';

const TOPIC = KAFKA_TOPICS.inferenceLog.name;

/**
 * Inference logs to the bus off the response path: a request only appends to a bounded buffer; a timer publishes
 * batches of at most `batch` records every `flushMs`. A full buffer drops the oldest (counted), a failed publish is
 * retried with the next flush and dropped (counted) only when the buffer overflows meanwhile.
 */
export class InferenceLogPublisher {
  readonly #buffer: InferenceLog[] = [];
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;

  constructor(
    private readonly bus: TypedBus<KafkaTopicValues> | null,
    private readonly options: { batch: number; flushMs: number; buffer: number },
    private readonly metrics: InferenceMetrics,
    private readonly logger: Logger,
  ) {}

  /** Records one prediction (never waits, never throws). */
  append(log: InferenceLog): void {
    if (!this.bus || this.#closed) return;
    this.#buffer.push(log);
    if (this.#buffer.length > this.options.buffer) {
      this.#buffer.shift();
      this.metrics.logsDropped.inc({ reason: 'buffer_full' });
    }
    if (this.#buffer.length >= this.options.batch) this.#kick(0);
    else this.#kick(this.options.flushMs);
  }

  #kick(delayMs: number): void {
    if (this.#timer && delayMs > 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, delayMs);
    this.#timer.unref();
  }

  /** Publishes what is buffered, in batches. */
  async flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#flushing = (async () => {
      while (this.#buffer.length > 0 && this.bus) {
        const batch = this.#buffer.splice(0, this.options.batch);
        try {
          await this.bus.publish(
            TOPIC,
            batch.map((value) => ({ value })),
          );
          this.metrics.logsPublished.inc(batch.length);
        } catch (error) {
          // put them back in front for the next flush; the bound above still holds
          this.#buffer.unshift(...batch);
          while (this.#buffer.length > this.options.buffer) {
            this.#buffer.shift();
            this.metrics.logsDropped.inc({ reason: 'publish_failed' });
          }
          this.logger.warn(
            { err: (error as Error).message },
            'inference logs: publish failed, retrying later',
          );
          if (!this.#closed) this.#kick(this.options.flushMs * 4);
          return;
        }
      }
    })().finally(() => {
      this.#flushing = null;
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.flush();
  }
}
