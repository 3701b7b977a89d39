import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import { decryptWithDataKey, encryptWithDataKey, randomDataKey } from './envelope.js';
import { KeyError } from './errors.js';

describe('envelope encryption with a data key', () => {
  it('round-trips with a versioned header, and any altered bit or other aad/key is refused', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.string({ maxLength: 40 }),
        fc.nat(),
        (plaintext, aad, flipAt) => {
          const key = randomDataKey();
          const envelope = encryptWithDataKey(key, plaintext, aad);
          expect([...envelope.subarray(0, 3)]).toEqual([0x45, 0x01, 0x01]);
          expect(envelope.byteLength).toBe(3 + 12 + plaintext.byteLength + 16);
          expect(Buffer.from(decryptWithDataKey(key, envelope, aad)).equals(Buffer.from(plaintext))).toBe(
            true,
          );
          const flipped = envelope.slice();
          flipped[flipAt % envelope.byteLength]! ^= 1 << (flipAt % 8);
          expect(['TAMPERED', 'BAD_FORMAT']).toContain(
            codeOf(KeyError, () => decryptWithDataKey(key, flipped, aad)),
          );
          expect(codeOf(KeyError, () => decryptWithDataKey(key, envelope, `${aad}!`))).toBe('TAMPERED');
          expect(codeOf(KeyError, () => decryptWithDataKey(randomDataKey(), envelope, aad))).toBe('TAMPERED');
        },
      ),
      { numRuns: 60 },
    );
  });

  it('uses a fresh IV each time', () => {
    const key = randomDataKey();
    const a = encryptWithDataKey(key, 'same');
    const b = encryptWithDataKey(key, 'same');
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });

  it('rejects malformed input with typed errors', () => {
    const key = randomDataKey();
    const envelope = encryptWithDataKey(key, 'x');
    expect(codeOf(KeyError, () => decryptWithDataKey(key, envelope.subarray(0, 30)))).toBe('BAD_FORMAT');
    const future = envelope.slice();
    future[1] = 2;
    expect(codeOf(KeyError, () => decryptWithDataKey(key, future))).toBe('BAD_FORMAT');
    expect(codeOf(KeyError, () => decryptWithDataKey(key, 'text' as unknown as Uint8Array))).toBe(
      'BAD_FORMAT',
    );
    expect(codeOf(KeyError, () => encryptWithDataKey(new Uint8Array(16), 'x'))).toBe('BAD_PRIVATE_KEY');
    expect(codeOf(KeyError, () => decryptWithDataKey(new Uint8Array(16), envelope))).toBe('BAD_PRIVATE_KEY');
  });
});
