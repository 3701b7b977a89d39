import type { KafkaTopicName, KafkaTopicValue } from '@edgefl/contracts';
import type { RegistryStore } from '../storage/registry-store.js';

export type TopicValues = { [T in KafkaTopicName]: KafkaTopicValue<T> };

// Avro `bytes` fields are Buffers; JSON has no bytes, so the outbox text marks them.
const BYTES = '$bytes';

export function encodeOutboxPayload(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (
      v &&
      typeof v === 'object' &&
      (v as { type?: unknown }).type === 'Buffer' &&
      Array.isArray((v as { data?: unknown }).data)
    ) {
      return { [BYTES]: Buffer.from((v as { data: number[] }).data).toString('base64') };
    }
    if (v instanceof Uint8Array) return { [BYTES]: Buffer.from(v).toString('base64') };
    return v;
  });
}

export function decodeOutboxPayload(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const keys = Object.keys(v);
      if (
        keys.length === 1 &&
        keys[0] === BYTES &&
        typeof (v as Record<string, unknown>)[BYTES] === 'string'
      ) {
        return Buffer.from((v as Record<string, string>)[BYTES]!, 'base64');
      }
    }
    return v;
  });
}

/**
 * Records an event in the outbox inside the caller's transaction: it is published on the bus (by OutboxRelay) only
 * if the change that caused it commits, and it is never lost when the process stops before publishing.
 */
export async function enqueueEvent<T extends KafkaTopicName>(
  store: RegistryStore,
  topic: T,
  value: KafkaTopicValue<T> & { eventId: string; tenant: string },
  key: string,
  now: number,
): Promise<void> {
  await store.outbox.enqueueEvent({
    topic,
    key,
    tenantId: value.tenant,
    eventId: value.eventId,
    payload: encodeOutboxPayload(value),
    createdAt: now,
  });
}
