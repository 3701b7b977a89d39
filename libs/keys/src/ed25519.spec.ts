import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import {
  Ed25519SigningKey,
  ed25519PublicKeyToPem,
  ed25519PublicKeyToSpki,
  ed25519RawPublicKey,
  keyIdOf,
  signEd25519,
  verifyEd25519,
} from './ed25519.js';
import { KeyError } from './errors.js';

const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

// RFC 8032 §7.1, TEST 1 and TEST 2.
const TEST1 = {
  seed: hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'),
  publicKey: hex('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a'),
  message: new Uint8Array(0),
  signature: hex(
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  ),
};
const TEST2 = {
  publicKey: hex('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c'),
  message: hex('72'),
  signature: hex(
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  ),
};

describe('Ed25519 primitives', () => {
  it('reproduces RFC 8032 test vectors', () => {
    const key = Ed25519SigningKey.fromSeed(TEST1.seed);
    expect(Buffer.from(key.publicKey).toString('hex')).toBe(Buffer.from(TEST1.publicKey).toString('hex'));
    expect(Buffer.from(key.sign(TEST1.message)).toString('hex')).toBe(
      Buffer.from(TEST1.signature).toString('hex'),
    );
    expect(verifyEd25519(TEST1.publicKey, TEST1.message, TEST1.signature)).toBe(true);
    expect(verifyEd25519(TEST2.publicKey, TEST2.message, TEST2.signature)).toBe(true);
    expect(verifyEd25519(TEST2.publicKey, hex('73'), TEST2.signature)).toBe(false);
    expect(verifyEd25519(TEST1.publicKey, TEST2.message, TEST2.signature)).toBe(false);
  });

  it('verifies with raw, SPKI DER and PEM public keys alike', () => {
    const key = Ed25519SigningKey.generate();
    const signature = key.sign('hello');
    const spki = ed25519PublicKeyToSpki(key.publicKey);
    const pem = ed25519PublicKeyToPem(key.publicKey);
    expect(spki.byteLength).toBe(44);
    expect(pem).toContain('BEGIN PUBLIC KEY');
    for (const form of [key.publicKey, spki, pem]) {
      expect(verifyEd25519(form, 'hello', signature)).toBe(true);
      expect(verifyEd25519(form, 'hellO', signature)).toBe(false);
      expect(Buffer.from(ed25519RawPublicKey(form)).equals(Buffer.from(key.publicKey))).toBe(true);
    }
    expect(key.keyId).toBe(keyIdOf(key.publicKey));
    expect(key.keyId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('round-trips private keys through PKCS#8 DER and PEM', () => {
    const key = Ed25519SigningKey.generate();
    const fromDer = Ed25519SigningKey.fromPkcs8(key.exportPkcs8());
    const fromPem = Ed25519SigningKey.fromPem(key.exportPem());
    expect(fromDer.keyId).toBe(key.keyId);
    expect(fromPem.keyId).toBe(key.keyId);
    expect(verifyEd25519(key.publicKey, 'm', signEd25519(key.exportPkcs8(), 'm'))).toBe(true);
    expect(verifyEd25519(key.publicKey, 'm', signEd25519(key.exportPem(), 'm'))).toBe(true);
  });

  it('rejects malformed keys and signatures with typed errors', () => {
    const key = Ed25519SigningKey.generate();
    const signature = key.sign('x');
    expect(codeOf(KeyError, () => verifyEd25519(key.publicKey, 'x', signature.subarray(0, 63)))).toBe(
      'BAD_SIGNATURE_FORMAT',
    );
    expect(codeOf(KeyError, () => verifyEd25519(key.publicKey, 'x', new Uint8Array(65)))).toBe(
      'BAD_SIGNATURE_FORMAT',
    );
    expect(codeOf(KeyError, () => verifyEd25519(new Uint8Array(31), 'x', signature))).toBe('BAD_PUBLIC_KEY');
    expect(
      codeOf(KeyError, () =>
        verifyEd25519('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', 'x', signature),
      ),
    ).toBe('BAD_PUBLIC_KEY');
    expect(codeOf(KeyError, () => Ed25519SigningKey.fromPkcs8(new Uint8Array(48)))).toBe('BAD_PRIVATE_KEY');
    expect(codeOf(KeyError, () => Ed25519SigningKey.fromSeed(new Uint8Array(31)))).toBe('BAD_PRIVATE_KEY');
    expect(codeOf(KeyError, () => Ed25519SigningKey.fromPem('not pem'))).toBe('BAD_PRIVATE_KEY');
  });

  it('never prints the private key', () => {
    const key = Ed25519SigningKey.fromSeed(TEST1.seed);
    const printed = [JSON.stringify(key), inspect(key, { showHidden: true, depth: 5 }), String(key)].join(
      '\n',
    );
    expect(printed).toContain(key.keyId);
    const seedForms = [Buffer.from(TEST1.seed).toString('hex'), Buffer.from(TEST1.seed).toString('base64')];
    const pkcs8 = Buffer.from(key.exportPkcs8()).toString('base64');
    for (const secret of [...seedForms, pkcs8]) expect(printed).not.toContain(secret);
  });
});
