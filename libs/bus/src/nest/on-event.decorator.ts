import { SetMetadata } from '@nestjs/common';
import type { SubscribeOptions } from '../port.js';
import { ON_EVENT_METADATA } from './tokens.js';

export interface OnEventOptions extends Omit<SubscribeOptions, 'topics' | 'handler' | 'batchHandler'> {
  /** Hand the method the raw BusRecord (bytes) instead of the decoded value, even when a codec is configured. */
  raw?: boolean;
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
 * ```
 */
export function OnEvent(topics: string | readonly string[], options: OnEventOptions): MethodDecorator {
  const metadata: OnEventMetadata = { topics: typeof topics === 'string' ? [topics] : [...topics], options };
  return SetMetadata(ON_EVENT_METADATA, metadata);
}
