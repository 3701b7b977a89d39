import { SetMetadata } from '@nestjs/common';
import type { SubscribeOptions } from '../port.js';
import { ON_EVENT_METADATA } from './tokens.js';

export interface OnEventOptions extends Omit<SubscribeOptions, 'topics' | 'handler' | 'batchHandler'> {
  /** Hand the method the raw BusRecord (bytes) instead of the decoded value, even when a codec is configured. */
  raw?: boolean;
  /**
   * Hand the method consecutive records of one partition at once (`maxBatchSize`, default 500): typed, it receives
   * `(records: TypedRecord[], undecodable: UndecodableRecord[])` — records whose bytes did not decode are handed
   * apart, not dead-lettered (a batch handler's throw fails the whole batch); raw, `(records: BusRecord[])`.
   * Progress commits after each batch, so a batch is the unit of replay: make its effects one transaction.
   */
  batch?: boolean;
}

export interface OnEventMetadata {
  topics: string[];
  options: OnEventOptions;
}

/**
 * Declares a consumer: the method is subscribed on application bootstrap and drained on shutdown.
 *
 * ```ts
 * @OnEvent('edgefl.fl.update.v1', { group: 'aggregator', maxAttempts: 5, dedupe: true })
 * async onUpdate(record: TypedRecord<KafkaTopicValues, 'edgefl.fl.update.v1'>) { ... }
 *
 * @OnEvent('edgefl.inference.log.v1', { group: 'telemetry', batch: true })
 * async onLogs(records: TypedRecord<KafkaTopicValues, 'edgefl.inference.log.v1'>[], undecodable: UndecodableRecord[]) { ... }
 * ```
 */
export function OnEvent(topics: string | readonly string[], options: OnEventOptions): MethodDecorator {
  const metadata: OnEventMetadata = { topics: typeof topics === 'string' ? [topics] : [...topics], options };
  return SetMetadata(ON_EVENT_METADATA, metadata);
}
