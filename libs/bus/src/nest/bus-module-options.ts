import type { Registry } from 'prom-client';
import type { BusConfig } from '../config.js';
import type { SubscribeOptions, TopicSpec } from '../port.js';
import type { ValueCodec } from '../typed/typed-bus.js';

/** Any topic codec (libs/contracts' TopicCodec fits). */
export type AnyValueCodec = ValueCodec<Record<string, unknown>>;

export interface BusModuleOptions {
  /** `{ adapter: 'embedded', path }` or `{ adapter: 'kafka', brokers, clientId, ssl?, sasl? }` (+ adapter tuning). */
  bus: BusConfig;
  /**
   * How values are encoded. Either a codec, or a factory given the bus config (e.g. libs/contracts' TopicCodec over an
   * EmbeddedSchemaRegistry in the bus file or a ConfluentSchemaRegistry at `{ url }`). Without one, @OnEvent handlers
   * receive raw records and dead letters are JSON.
   */
  codec?: AnyValueCodec | ((bus: BusConfig) => AnyValueCodec | Promise<AnyValueCodec>);
  /** Record key of a value (libs/contracts' kafkaKey). */
  keyOf?: (topic: string, value: unknown) => string | null;
  /** Topics created/updated at init (libs/contracts' KAFKA_TOPICS entries fit). */
  topics?: readonly TopicSpec[];
  /** Registry the bus metrics go to (the service's /metrics registry). */
  metricsRegistry?: Registry;
  /** Defaults for every @OnEvent (maxAttempts, backoff, ...). */
  defaults?: Partial<Omit<SubscribeOptions, 'group' | 'topics' | 'handler' | 'batchHandler'>>;
}
