import { inspect } from 'node:util';
import { Aes128Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import { KeyError } from './errors.js';
import { decodeSealed, encodeSealed, open, seal, SealPrivateKey, SEALED_FORMAT_V1 } from './hpke.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const toHex = (b: ArrayBuffer | Uint8Array) =>
  Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString('hex');

// RFC 9180 Appendix A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode base, sequence number 0.
// (The RFC has no vector for AES-256-GCM with this KEM; A.1 exercises the same KEM and KDF we use.)
const A11 = {
  info: hex('4f6465206f6e2061204772656369616e2055726e'),
  ikmE: hex('7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234'),
  ikmR: hex('6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037'),
  pkRm: '3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d',
  skRm: hex('4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8'),
  enc: '37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431',
  pt: hex('4265617574792069732074727574682c20747275746820626561757479'),
  aad: hex('436f756e742d30'),
  ct: 'f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a',
};

describe('HPKE (RFC 9180) primitives', () => {
  it('matches the RFC 9180 A.1.1 known-answer vector (sender and recipient)', async () => {
    const kat = new CipherSuite({
      kem: new DhkemX25519HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes128Gcm(),
    });
    // Our X25519 public-key derivation and the library's DeriveKeyPair agree with the RFC.
    const recipient = await SealPrivateKey.fromRaw(A11.skRm);
    expect(toHex(recipient.publicKey)).toBe(A11.pkRm);
    const derived = await kat.kem.deriveKeyPair(A11.ikmR.slice().buffer);
    expect(toHex(await kat.kem.serializePrivateKey(derived.privateKey))).toBe(toHex(A11.skRm));

    const sender = await kat.createSenderContext({
      recipientPublicKey: await kat.kem.deserializePublicKey(recipient.publicKey.slice()),
      info: A11.info.slice(),
      ekm: A11.ikmE.slice(),
    });
    expect(toHex(sender.enc)).toBe(A11.enc);
    expect(toHex(await sender.seal(A11.pt.slice(), A11.aad.slice()))).toBe(A11.ct);

    const opened = await kat.open(
      {
        recipientKey: await kat.kem.deserializePrivateKey(A11.skRm.slice()),
        enc: hex(A11.enc),
        info: A11.info.slice(),
      },
      hex(A11.ct),
      A11.aad.slice(),
    );
    expect(toHex(opened)).toBe(toHex(A11.pt));
  });

  it('round-trips arbitrary plaintext, info and aad, and detects any single bit flip', async () => {
    const key = SealPrivateKey.generate();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 512 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(),
        async (plaintext, info, aad, flipAt) => {
          const sealed = await seal(key.publicKey, plaintext, { info, aad });
          const encoded = encodeSealed(sealed);
          expect(encoded[0]).toBe(SEALED_FORMAT_V1);
          expect(encoded.byteLength).toBe(1 + 32 + plaintext.byteLength + 16);
          expect(toHex(await open(key, encoded, { info, aad }))).toBe(toHex(plaintext));
          const flipped = encoded.slice();
          const at = 1 + (flipAt % (encoded.byteLength - 1)); // any byte after the version
          flipped[at]! ^= 1 << (flipAt % 8);
          expect(['TAMPERED', 'DECRYPT_FAILED']).toContain(
            await codeOf(KeyError, open(key, flipped, { info, aad })),
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses another recipient, another info or aad', async () => {
    const key = SealPrivateKey.generate();
    const other = SealPrivateKey.generate();
    const sealed = await seal(key.publicKey, 'secret update', { info: 'round-1', aad: 'device-1' });
    expect(new TextDecoder().decode(await key.open(sealed, { info: 'round-1', aad: 'device-1' }))).toBe(
      'secret update',
    );
    expect(await codeOf(KeyError, other.open(sealed, { info: 'round-1', aad: 'device-1' }))).toBe('TAMPERED');
    expect(await codeOf(KeyError, key.open(sealed, { info: 'round-2', aad: 'device-1' }))).toBe('TAMPERED');
    expect(await codeOf(KeyError, key.open(sealed, { info: 'round-1', aad: 'device-2' }))).toBe('TAMPERED');
    expect(await codeOf(KeyError, key.open(sealed))).toBe('TAMPERED');
  });

  it('restores a private key from its raw bytes', async () => {
    const key = SealPrivateKey.generate();
    const restored = await SealPrivateKey.fromRaw(key.exportRaw());
    expect(restored.keyId).toBe(key.keyId);
    const sealed = await seal(key.publicKey, 'x');
    expect(new TextDecoder().decode(await restored.open(sealed))).toBe('x');
  });

  it('rejects malformed keys and messages with typed errors', async () => {
    const key = SealPrivateKey.generate();
    expect(await codeOf(KeyError, seal(new Uint8Array(31), 'x'))).toBe('BAD_PUBLIC_KEY');
    expect(await codeOf(KeyError, seal(new Uint8Array(32), 'x'))).toBe('BAD_PUBLIC_KEY'); // low-order point: the DH output is zero
    expect(await codeOf(KeyError, SealPrivateKey.fromRaw(new Uint8Array(16)))).toBe('BAD_PRIVATE_KEY');
    expect(await codeOf(KeyError, key.open(new Uint8Array(48)))).toBe('BAD_FORMAT');
    expect(await codeOf(KeyError, key.open(Uint8Array.of(2, ...new Uint8Array(60))))).toBe('BAD_FORMAT');
    expect(
      await codeOf(KeyError, key.open({ enc: new Uint8Array(31), ciphertext: new Uint8Array(20) })),
    ).toBe('BAD_FORMAT');
    expect(
      await codeOf(KeyError, key.open({ enc: new Uint8Array(32), ciphertext: new Uint8Array(20) })),
    ).toBe('DECRYPT_FAILED');
    expect(await codeOf(KeyError, key.open(null as unknown as Uint8Array))).toBe('BAD_FORMAT');
    expect(() => decodeSealed(new Uint8Array(10))).toThrow(KeyError);
  });

  it('never prints the private key', async () => {
    const key = SealPrivateKey.generate();
    const raw = key.exportRaw();
    const printed = [JSON.stringify(key), inspect(key, { showHidden: true, depth: 5 })].join('\n');
    expect(printed).toContain(key.keyId);
    for (const secret of [Buffer.from(raw).toString('hex'), Buffer.from(raw).toString('base64')]) {
      expect(printed).not.toContain(secret);
    }
  });
});
