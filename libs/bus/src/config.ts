import { EmbeddedBus, type EmbeddedBusOptions } from './embedded/embedded-bus.js';
import type { KafkaBusOptions } from './kafka/kafka-bus.js';
import { BusError, type EventBus } from './port.js';

/** Which adapter, and its settings. A mode is configuration only. */
export type BusConfig =
  ({ adapter: 'embedded' } & EmbeddedBusOptions) | ({ adapter: 'kafka' } & KafkaBusOptions);

/** Builds the bus an adapter config names. The Kafka adapter (and kafkajs) loads only when asked for. */
export async function createBus(config: BusConfig): Promise<EventBus> {
  if (config?.adapter === 'embedded') {
    const { adapter: _adapter, ...options } = config;
    return new EmbeddedBus(options);
  }
  if (config?.adapter === 'kafka') {
    const { adapter: _adapter, ...options } = config;
    const { KafkaBus } = await import('./kafka/kafka-bus.js');
    return new KafkaBus(options);
  }
  throw new BusError(
    'invalid_config',
    `unknown bus adapter ${JSON.stringify((config as { adapter?: unknown })?.adapter)}; use 'embedded' or 'kafka'`,
  );
}
