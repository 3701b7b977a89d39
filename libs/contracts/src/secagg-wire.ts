// The one conversion between libs/fl's secure-aggregation protocol messages and the `SecAggMessage` event of this
// package (`fl-secagg.avsc`): the aggregator, the device SDK and the CLI's oracle all use it. Edge-safe: it needs
// only node:crypto and the single-object codec. libs/fl may import no lib, so the conversion lives here, next to
// the schema it must follow (a field added to the schema fails to compile here until it is mapped).
import { randomUUID } from 'node:crypto';
import type { SecAggMessage as SecAggProtocolMessage } from '@edgefl/fl';
import type { SecAggMessage as SecAggEvent } from './generated/types.js';
import { SingleObjectCodec } from './single-object.js';

export type { SecAggProtocolMessage };

const SCHEMA = 'io.edgefl.fl.SecAggMessage';

const buf = (b: Uint8Array): Buffer =>
  Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const bufOrNull = (b: Uint8Array | null): Buffer | null => (b === null ? null : buf(b));
const bufMap = (m: Record<string, Uint8Array>): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, buf(v)]));

export interface SecAggEnvelope {
  /** The event id (default: a fresh UUID); consumers dedupe on it. */
  eventId?: string;
  createdAt?: number;
  /** The one device an aggregator request is for (the gateway delivers it to that device only). */
  recipientDeviceId?: string | null;
}

/** A protocol message as the `SecAggMessage` event (the envelope's id, time and recipient added). */
export function toSecAggEvent(m: SecAggProtocolMessage, envelope: SecAggEnvelope = {}): SecAggEvent {
  return {
    ...m,
    eventId: envelope.eventId ?? randomUUID(),
    createdAt: envelope.createdAt ?? Date.now(),
    recipientDeviceId: envelope.recipientDeviceId ?? null,
    cipherPublicKey: bufOrNull(m.cipherPublicKey),
    maskPublicKey: bufOrNull(m.maskPublicKey),
    keySignature: bufOrNull(m.keySignature),
    encryptedShares: bufMap(m.encryptedShares),
    maskedInput: bufOrNull(m.maskedInput),
    selfMaskShares: bufMap(m.selfMaskShares),
    maskKeyShares: bufMap(m.maskKeyShares),
    config: m.config && { ...m.config, graphSeed: buf(m.config.graphSeed) },
    advertisedKeys: Object.fromEntries(
      Object.entries(m.advertisedKeys).map(([k, v]) => [
        k,
        {
          cipherPublicKey: buf(v.cipherPublicKey),
          maskPublicKey: buf(v.maskPublicKey),
          keySignature: buf(v.keySignature),
        },
      ]),
    ),
    selfMaskCommitment: bufOrNull(m.selfMaskCommitment),
    consistencySignature: bufOrNull(m.consistencySignature),
    survivorSignatures: bufMap(m.survivorSignatures),
  };
}

/** The protocol message carried by a decoded event (the envelope dropped). */
export function fromSecAggEvent(e: SecAggEvent): SecAggProtocolMessage {
  const { eventId: _id, createdAt: _at, recipientDeviceId: _to, ...message } = e;
  return message;
}

let codec: SingleObjectCodec | null = null;
const sharedCodec = (): SingleObjectCodec => (codec ??= new SingleObjectCodec());

/** Bytes of a protocol message as an MQTT payload: Avro single-object encoding of the event. */
export function secAggWireBytes(m: SecAggProtocolMessage, envelope: SecAggEnvelope = {}): number {
  return sharedCodec().encode(SCHEMA, toSecAggEvent(m, envelope)).length;
}

/** Encodes and decodes the message through the Avro schema (what crosses MQTT and the bus). */
export function throughAvro(m: SecAggProtocolMessage): SecAggProtocolMessage {
  const bytes = sharedCodec().encode(SCHEMA, toSecAggEvent(m));
  return fromSecAggEvent(sharedCodec().decode(bytes, SCHEMA));
}
