import { describe, expect, it } from 'vitest';
import { emptyMessage, messageDigest } from '@edgefl/fl';
import { SingleObjectCodec } from './single-object.js';
import { fromSecAggEvent, throughAvro, toSecAggEvent } from './secagg-wire.js';

describe('secure-aggregation messages ⇄ the SecAggMessage event', () => {
  const message = () => {
    const m = emptyMessage({ tenant: 'acme', roundId: 'r-1', bucket: 2 }, 'SHARE_KEYS', null);
    m.participants = ['d2', 'd3'];
    m.advertisedKeys = {
      d2: {
        cipherPublicKey: new Uint8Array(32).fill(1),
        maskPublicKey: new Uint8Array(32).fill(2),
        keySignature: new Uint8Array(64).fill(3),
      },
    };
    m.encryptedShares = { d3: Uint8Array.of(4, 5, 6) };
    return m;
  };

  it('round-trips through the Avro schema with the recipient in the envelope only', () => {
    const m = message();
    const codec = new SingleObjectCodec();
    const event = toSecAggEvent(m, { recipientDeviceId: 'd1', createdAt: 5 });
    expect(event).toMatchObject({ recipientDeviceId: 'd1', createdAt: 5, bucket: 2 });
    const decoded = codec.decode(
      codec.encode('io.edgefl.fl.SecAggMessage', event),
      'io.edgefl.fl.SecAggMessage',
    );
    expect(decoded.recipientDeviceId).toBe('d1');
    const back = fromSecAggEvent(decoded);
    expect(back).not.toHaveProperty('recipientDeviceId');
    expect(back).not.toHaveProperty('eventId');
    expect(messageDigest(back)).toBe(messageDigest(m));
    expect(messageDigest(throughAvro(m))).toBe(messageDigest(m));
  });

  it('gives each event a fresh id unless one is given', () => {
    const m = message();
    expect(toSecAggEvent(m).eventId).not.toBe(toSecAggEvent(m).eventId);
    expect(toSecAggEvent(m, { eventId: 'e-1' }).eventId).toBe('e-1');
    expect(toSecAggEvent(m).recipientDeviceId).toBeNull();
  });
});
