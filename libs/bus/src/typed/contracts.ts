// The typed layer wired to libs/contracts: TopicCodec (Confluent wire format) over the embedded schema registry (in
// the bus file) or a Confluent-compatible one, the catalog's record keys, and the catalog's topics.
import {
  ConfluentSchemaRegistry,
  EmbeddedSchemaRegistry,
  KAFKA_TOPICS,
  TopicCodec,
  kafkaKey,
  type KafkaTopicName,
  type KafkaTopicValue,
  type SchemaRegistry,
} from '@edgefl/contracts';
import { createBus, type BusConfig } from '../config.js';
import { BusError, type EventBus, type TopicSpec } from '../port.js';
import { TypedBus, type ValueCodec } from './typed-bus.js';

/** Every catalog topic name mapped to its value type: the `C` of TypedBus for edgefl's own topics. */
export type KafkaTopicValues = { [T in KafkaTopicName]: KafkaTopicValue<T> };

/** Where schemas live: the embedded registry (default: in the embedded bus file) or a Confluent-compatible one. */
export type SchemaRegistryConfig =
  | { kind: 'embedded'; path?: string }
  | { kind: 'remote'; url: string; auth?: { username: string; password: string } };

/** The catalog's Kafka topics as TopicSpecs for ensureTopics. */
export function catalogTopics(): TopicSpec[] {
  return Object.values(KAFKA_TOPICS).map((t) => ({
    name: t.name,
    partitions: t.partitions,
    retentionMs: t.retentionMs,
    cleanupPolicy: t.cleanupPolicy,
  }));
}

export function createSchemaRegistry(config: SchemaRegistryConfig, bus?: BusConfig): SchemaRegistry {
  if (config.kind === 'remote')
    return new ConfluentSchemaRegistry({ host: config.url, ...(config.auth ? { auth: config.auth } : {}) });
  const path = config.path ?? (bus?.adapter === 'embedded' ? bus.path : undefined);
  if (!path)
    throw new BusError(
      'invalid_config',
      'the embedded schema registry needs a path (or an embedded bus to share its file)',
    );
  return new EmbeddedSchemaRegistry(path);
}

/** libs/contracts' TopicCodec as the typed layer's codec. */
export function contractsCodec(registry: SchemaRegistry): ValueCodec<KafkaTopicValues> {
  const codec = new TopicCodec(registry);
  // KafkaTopicValues[T] and KafkaTopicValue<T> are the same type for every T; TS cannot see it through the generic.
  return {
    encode: (topic, value) => codec.encode(topic, value as never),
    decode: (topic, bytes) => codec.decode(topic, bytes) as Promise<never>,
  };
}

/** The key of a catalog value (its keyField); null for topics outside the catalog. */
export function catalogKeyOf(topic: string, value: unknown): string | null {
  return topic in byName ? kafkaKey(topic as KafkaTopicName, value as never) : null;
}
const byName: Record<string, true> = Object.fromEntries(
  Object.values(KAFKA_TOPICS).map((t) => [t.name, true]),
);

/** A TypedBus over the catalog: values encoded with TopicCodec, keys from the catalog. */
export function catalogBus(bus: EventBus, registry: SchemaRegistry): TypedBus<KafkaTopicValues> {
  return new TypedBus(bus, contractsCodec(registry), { keyOf: catalogKeyOf });
}

/** Where another client reaches a service's bus: the embedded bus file, or the Kafka cluster and its registry. */
export type BusEndpoint =
  { adapter: 'embedded'; path: string } | { adapter: 'kafka'; brokers: string[]; schemaRegistryUrl: string };

/**
 * A bus client at `endpoint` and the catalog's typed layer over it (for tools and tests beside a service). It
 * ensures the catalog's topics first, as a service does at boot: a client that came first must not auto-create a
 * catalog topic with another partition count (ensureTopics refuses to change a count afterwards).
 */
export async function openCatalogBus(
  endpoint: BusEndpoint,
  clientId: string,
): Promise<{ bus: EventBus; typed: TypedBus<KafkaTopicValues> }> {
  const bus = await createBus(
    endpoint.adapter === 'kafka'
      ? { adapter: 'kafka', brokers: endpoint.brokers, clientId }
      : { adapter: 'embedded', path: endpoint.path },
  );
  const registry = createSchemaRegistry(
    endpoint.adapter === 'kafka'
      ? { kind: 'remote', url: endpoint.schemaRegistryUrl }
      : { kind: 'embedded', path: endpoint.path },
  );
  try {
    await bus.ensureTopics(catalogTopics());
  } catch (error) {
    await bus.close();
    throw error;
  }
  return { bus, typed: catalogBus(bus, registry) };
}
