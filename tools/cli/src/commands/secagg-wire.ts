import { randomUUID } from 'node:crypto';
import { SingleObjectCodec, type SecAggMessage as SecAggEvent } from '@edgefl/contracts/edge';
import type { SecAggMessage } from '@edgefl/fl';

const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const bufOrNull = (b: Uint8Array | null): Buffer | null => (b === null ? null : buf(b));
const bufMap = (m: Record<string, Uint8Array>): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, buf(v)]));

/** A protocol message as the `SecAggMessage` event of libs/contracts (the envelope's id and time added). */
export function toSecAggEvent(m: SecAggMessage, createdAt = Date.now()): SecAggEvent {
  return {
    ...m,
    eventId: randomUUID(),
    createdAt,
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

/** The protocol message carried by a decoded event (drops the envelope). */
export function fromSecAggEvent(e: SecAggEvent): SecAggMessage {
  const { eventId: _id, createdAt: _at, ...message } = e;
  return message;
}

const codec = new SingleObjectCodec();

/** Bytes of a protocol message as an MQTT payload: Avro single-object encoding of the contract event. */
export function secAggWireBytes(m: SecAggMessage): number {
  return codec.encode('io.edgefl.fl.SecAggMessage', toSecAggEvent(m)).length;
}

/** Encodes and decodes the message through the Avro schema (what crosses MQTT and the bus). */
export function throughAvro(m: SecAggMessage): SecAggMessage {
  const bytes = codec.encode('io.edgefl.fl.SecAggMessage', toSecAggEvent(m));
  return fromSecAggEvent(codec.decode(bytes, 'io.edgefl.fl.SecAggMessage'));
}
