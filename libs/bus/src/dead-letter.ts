import { createHash } from 'node:crypto';
import {
  DEAD_LETTER_TOPIC,
  HEADER_TENANT,
  HEADER_TRACE_ID,
  type DeadLetterEncoder,
  type DeadLetterInfo,
  type EventBus,
  type OutgoingRecord,
} from './port.js';

/**
 * Fallback dead-letter encoding (JSON, original bytes base64) for a bus used without libs/contracts. The typed
 * layer and the NestJS module replace it with the Avro DeadLetter codec of the topic catalog.
 */
export const jsonDeadLetterEncoder: DeadLetterEncoder = (d) =>
  Buffer.from(JSON.stringify({ ...d, value: d.value.toString('base64') }));

/** Reads what jsonDeadLetterEncoder wrote. */
export function decodeJsonDeadLetter(bytes: Buffer): DeadLetterInfo {
  const parsed = JSON.parse(bytes.toString('utf8')) as DeadLetterInfo & { value: string };
  return { ...parsed, value: Buffer.from(parsed.value, 'base64') };
}

/**
 * The record published on the dead-letter topic, keyed by the original topic (the catalog's keyField for
 * edgefl.bus.deadletter.v1, so one topic's failures stay in order), with the tenant and trace id of the original, and an event id derived from where the original was, so publishing the
 * same dead letter twice (a crash between publish and commit) dedupes downstream.
 */
export async function deadLetterRecord(
  info: DeadLetterInfo,
  encode: DeadLetterEncoder,
): Promise<OutgoingRecord> {
  const eventId = createHash('sha256')
    .update(
      `${info.consumerGroup}\0${info.originalTopic}\0${info.partition}\0${info.offset}\0${info.eventId}`,
    )
    .digest('hex')
    .slice(0, 32);
  const headers: Record<string, string> = {
    'dlq-original-topic': info.originalTopic,
    'dlq-error-code': info.errorCode,
    'dlq-consumer-group': info.consumerGroup,
    'dlq-original-event-id': info.eventId,
  };
  const tenant = info.headers[HEADER_TENANT];
  const traceId = info.headers[HEADER_TRACE_ID];
  return {
    topic: DEAD_LETTER_TOPIC,
    key: info.originalTopic,
    value: await encode(info),
    headers,
    eventId,
    ...(tenant !== undefined ? { tenant } : {}),
    ...(traceId !== undefined ? { traceId } : {}),
  };
}

/**
 * What an adapter does with a record its delivery gave up on: publishes the dead letter (deadLetterRecord, encoded
 * with `encode`) on the same bus. A failed publish rejects, so the caller leaves the record uncommitted.
 */
export function deadLetterPublisher(
  bus: Pick<EventBus, 'publish'>,
  encode: DeadLetterEncoder,
): (info: DeadLetterInfo) => Promise<void> {
  return async (info) => {
    await bus.publish([await deadLetterRecord(info, encode)]);
  };
}
