export * from './port.js';
export { murmur2, partitionForKey } from './partitioner.js';
export { UnprocessableRecordError } from './delivery.js';
export { jsonDeadLetterEncoder, decodeJsonDeadLetter, deadLetterRecord } from './dead-letter.js';
export { ProcessedEventStore, type ProcessedEventStoreOptions } from './processed-events.js';
export { EmbeddedBus, type EmbeddedBusOptions } from './embedded/embedded-bus.js';
export { createBus, type BusConfig } from './config.js';
export type { KafkaBusOptions } from './kafka/kafka-bus.js';
export * from './typed/typed-bus.js';
