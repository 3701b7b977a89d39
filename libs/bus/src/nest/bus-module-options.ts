import type { Registry } from 'prom-client';
import type { BusConfig } from '../config.js';
import type { SubscribeOptions, TopicSpec } from '../port.js';
import type { SchemaRegistryConfig } from '../typed/contracts.js';
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
  /**
   * The usual way to get a codec: libs/contracts' TopicCodec over this registry (`{ kind: 'embedded' }` keeps schema
   * ids in the embedded bus file; `{ kind: 'remote', url }` for a Confluent-compatible registry). Ignored when
   * `codec` is given. Keys then default to the catalog's keyField.
   */
  schemaRegistry?: SchemaRegistryConfig;
  /** Record key of a value (default with schemaRegistry: libs/contracts' kafkaKey). */
  keyOf?: (topic: string, value: unknown) => string | null;
  /** Topics created/updated at init: a list, or 'catalog' for every topic of libs/contracts' KAFKA_TOPICS. */
  topics?: readonly TopicSpec[] | 'catalog';
  /** Registry the bus metrics go to (the service's /metrics registry). */
  metricsRegistry?: Registry;
  /** Defaults for every @OnEvent (maxAttempts, backoff, ...). */
  defaults?: Partial<Omit<SubscribeOptions, 'group' | 'topics' | 'handler' | 'batchHandler'>>;
}
