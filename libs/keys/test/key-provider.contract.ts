// The one contract every KeyProvider adapter passes. Imported by local.contract.spec.ts and vault.contract.spec.ts.
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { thrownBy, type Thrown } from '@edgefl/testing';
import {
  decryptWithDataKey,
  encodeSealed,
  encryptWithDataKey,
  KeyError,
  seal,
  verifyEd25519,
  type KeyProvider,
} from '../src/index.js';

export interface ContractTarget {
  /** Opens a provider over the same backing store every time (a reopen must see earlier keys). */
  open(): Promise<KeyProvider>;
  /** Strings that must never show up in errors or in what a logger prints (key material in the store, tokens). */
  secrets(): Promise<string[]>;
  cleanup(): Promise<void>;
}

/** The code of what an action threw (codeOf of libs/testing); every error is kept for the leak check below. */
async function recordedCodeOf(action: Promise<unknown>): Promise<Thrown<KeyError>['code']> {
  const thrown = await thrownBy(KeyError, action);
  if ('error' in thrown) seenErrors.push(thrown.error);
  return thrown.code;
}

const seenErrors: unknown[] = [];
const bytes = (text: string) => new TextEncoder().encode(text);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

export function keyProviderContract(
  suite: string,
  setup: () => Promise<ContractTarget>,
  enabled = true,
): void {
  describe.skipIf(!enabled)(`KeyProvider contract: ${suite}`, () => {
    let target: ContractTarget;
    let keys: KeyProvider;
    const run = `c${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
    const n = (name: string) => `${run}-${name}`;
    const dataKeyPlaintexts: Uint8Array[] = [];

    beforeAll(async () => {
      target = await setup();
      keys = await target.open();
    });
    afterAll(async () => {
      await keys?.close();
      await target?.cleanup();
    });

    it('signs with the latest version and verifies every version across rotation', async () => {
      const first = await keys.createSigningKey(n('release'));
      expect(first.version).toBe(1);
      const a = await keys.sign(n('release'), 'manifest v1');
      expect(a.version).toBe(1);
      expect(a.keyId).toBe(first.keyId);
      expect(a.signature.byteLength).toBe(64);

      const rotated = await keys.rotate(n('release'));
      expect(rotated.version).toBe(2);
      expect(rotated.kind).toBe('signing');
      const b = await keys.sign(n('release'), 'manifest v2');
      expect(b.version).toBe(2);
      expect(b.keyId).toBe(rotated.keyId);
      expect(b.keyId).not.toBe(a.keyId);

      expect(await keys.verify(n('release'), 'manifest v1', a.signature)).toBe(true);
      expect(await keys.verify(n('release'), 'manifest v1', a.signature, 1)).toBe(true);
      expect(await keys.verify(n('release'), 'manifest v1', a.signature, 2)).toBe(false);
      expect(await keys.verify(n('release'), 'manifest v2', b.signature, 2)).toBe(true);

      // Verifiers without the backend: the published public keys verify with node:crypto alone.
      const published = await keys.publicKeys(n('release'));
      expect(published.map((k) => k.version)).toEqual([1, 2]);
      expect(published.map((k) => k.keyId)).toEqual([a.keyId, b.keyId]);
      expect(verifyEd25519(published[0]!.publicKey, 'manifest v1', a.signature)).toBe(true);
      expect(verifyEd25519(published[1]!.publicKey, 'manifest v2', b.signature)).toBe(true);
      expect(verifyEd25519(published[1]!.publicKey, 'manifest v1', a.signature)).toBe(false);
    });

    it('creating an existing key is idempotent and keeps its versions', async () => {
      const again = await keys.createSigningKey(n('release'));
      expect(again.version).toBe(2);
      expect((await keys.publicKeys(n('release'))).length).toBe(2);
    });

    it('detects tampered data and signatures, and rejects malformed signatures', async () => {
      const { signature } = await keys.sign(n('release'), bytes('payload'));
      expect(await keys.verify(n('release'), bytes('payloaD'), signature)).toBe(false);
      const flipped = signature.slice();
      flipped[10]! ^= 0x01;
      expect(await keys.verify(n('release'), bytes('payload'), flipped)).toBe(false);
      expect(await recordedCodeOf(keys.verify(n('release'), bytes('payload'), signature.slice(0, 63)))).toBe(
        'BAD_SIGNATURE_FORMAT',
      );
      expect(
        await recordedCodeOf(
          keys.verify(n('release'), bytes('payload'), 'not bytes' as unknown as Uint8Array),
        ),
      ).toBe('BAD_SIGNATURE_FORMAT');
      expect(await recordedCodeOf(keys.sign(n('release'), 42 as unknown as string))).toBe('BAD_FORMAT');
      expect(
        await recordedCodeOf(keys.verify(n('release'), { length: 3 } as unknown as string, signature)),
      ).toBe('BAD_FORMAT');
    });

    it('reports unknown keys, unknown versions, bad names and wrong key kinds', async () => {
      const sig = new Uint8Array(64);
      expect(await recordedCodeOf(keys.sign(n('nope'), 'x'))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.verify(n('nope'), 'x', sig))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.verify(n('release'), 'x', sig, 99))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.publicKeys(n('nope')))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.rotate(n('nope')))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.sealPublicKey(n('nope')))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.open(n('nope'), new Uint8Array(80)))).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.generateDataKey(n('nope')))).toBe('UNKNOWN_KEY');
      for (const bad of ['', '../etc', 'a/b', 'x'.repeat(200), '-lead', 'sp ace', 42 as unknown as string]) {
        expect(await recordedCodeOf(keys.createSigningKey(bad))).toBe('BAD_KEY_NAME');
        expect(await recordedCodeOf(keys.sign(bad, 'x'))).toBe('BAD_KEY_NAME');
      }
      await keys.createKeyEncryptionKey(n('kek-kind'));
      expect(await recordedCodeOf(keys.sign(n('kek-kind'), 'x'))).toBe('KEY_TYPE_MISMATCH');
      expect(await recordedCodeOf(keys.createSigningKey(n('kek-kind')))).toBe('KEY_TYPE_MISMATCH');
      expect(await recordedCodeOf(keys.generateDataKey(n('release')))).toBe('KEY_TYPE_MISMATCH');
    });

    it('opens what devices seal to the round key, and refuses altered ciphertext, enc, info or aad', async () => {
      const round = await keys.createSealKey(n('round-1'));
      expect(round.publicKey.byteLength).toBe(32);
      expect((await keys.sealPublicKey(n('round-1'))).keyId).toBe(round.keyId);
      expect((await keys.createSealKey(n('round-1'))).keyId).toBe(round.keyId); // idempotent

      const info = `edgefl/fl.update/${n('round-1')}`;
      const sealed = await seal(round.publicKey, 'clipped, noised update', { info, aad: 'device-7' });
      expect(new TextDecoder().decode(await keys.open(n('round-1'), sealed, info, 'device-7'))).toBe(
        'clipped, noised update',
      );
      const encoded = encodeSealed(sealed);
      expect(new TextDecoder().decode(await keys.open(n('round-1'), encoded, info, 'device-7'))).toBe(
        'clipped, noised update',
      );

      const ct = sealed.ciphertext.slice();
      ct[0]! ^= 0x80;
      expect(
        await recordedCodeOf(keys.open(n('round-1'), { enc: sealed.enc, ciphertext: ct }, info, 'device-7')),
      ).toBe('TAMPERED');
      expect(await recordedCodeOf(keys.open(n('round-1'), sealed, info, 'device-8'))).toBe('TAMPERED');
      expect(await recordedCodeOf(keys.open(n('round-1'), sealed, `${info}x`, 'device-7'))).toBe('TAMPERED');
      const enc = sealed.enc.slice();
      enc[5]! ^= 0x01;
      expect(['TAMPERED', 'DECRYPT_FAILED']).toContain(
        await recordedCodeOf(
          keys.open(n('round-1'), { enc, ciphertext: sealed.ciphertext }, info, 'device-7'),
        ),
      );
      expect(await recordedCodeOf(keys.open(n('round-1'), encoded.subarray(0, 20), info, 'device-7'))).toBe(
        'BAD_FORMAT',
      );
      expect(await recordedCodeOf(keys.open(n('round-1'), sealed, 7 as unknown as string, 'device-7'))).toBe(
        'BAD_FORMAT',
      );
      expect(await recordedCodeOf(keys.open(n('round-1'), { enc: 1 } as unknown as Uint8Array, info))).toBe(
        'BAD_FORMAT',
      );
      const wrongVersion = encoded.slice();
      wrongVersion[0] = 9;
      expect(await recordedCodeOf(keys.open(n('round-1'), wrongVersion, info, 'device-7'))).toBe(
        'BAD_FORMAT',
      );

      // Another round's key cannot open it.
      await keys.createSealKey(n('round-2'));
      expect(await recordedCodeOf(keys.open(n('round-2'), sealed, info, 'device-7'))).toBe('TAMPERED');
      expect(await recordedCodeOf(keys.rotate(n('round-2')))).toBe('KEY_TYPE_MISMATCH');

      await keys.deleteSealKey(n('round-2'));
      expect(await recordedCodeOf(keys.open(n('round-2'), sealed, info, 'device-7'))).toBe('UNKNOWN_KEY');
      await keys.deleteSealKey(n('round-2')); // idempotent
    });

    it('wraps and unwraps data keys per tenant, across key-encryption-key rotation', async () => {
      const kek = await keys.createKeyEncryptionKey(n('tenant-a'));
      expect(kek.kind).toBe('kek');
      await keys.createKeyEncryptionKey(n('tenant-b'));
      const dk1 = await keys.generateDataKey(n('tenant-a'));
      dataKeyPlaintexts.push(dk1.plaintext);
      expect(dk1.plaintext.byteLength).toBe(32);
      expect(dk1.kekVersion).toBe(1);
      expect(dk1.wrapped).not.toContain(b64(dk1.plaintext));
      const envelope = encryptWithDataKey(dk1.plaintext, 'model artifact', 'tenant-a/model-1');
      const unwrapped = await keys.unwrapDataKey(n('tenant-a'), dk1.wrapped);
      expect(hex(unwrapped)).toBe(hex(dk1.plaintext));
      expect(new TextDecoder().decode(decryptWithDataKey(unwrapped, envelope, 'tenant-a/model-1'))).toBe(
        'model artifact',
      );

      const rotated = await keys.rotate(n('tenant-a'));
      expect(rotated).toMatchObject({ kind: 'kek', version: 2 });
      const dk2 = await keys.generateDataKey(n('tenant-a'));
      dataKeyPlaintexts.push(dk2.plaintext);
      expect(dk2.kekVersion).toBe(2);
      expect(hex(await keys.unwrapDataKey(n('tenant-a'), dk1.wrapped))).toBe(hex(dk1.plaintext));
      expect(hex(await keys.unwrapDataKey(n('tenant-a'), dk2.wrapped))).toBe(hex(dk2.plaintext));

      // Another tenant's key-encryption key cannot unwrap it; altered or foreign text is refused.
      expect(await recordedCodeOf(keys.unwrapDataKey(n('tenant-b'), dk1.wrapped))).toBe('TAMPERED');
      const body = dk1.wrapped.slice(dk1.wrapped.lastIndexOf(':') + 1);
      const raw = Buffer.from(body, 'base64');
      raw[raw.length - 1]! ^= 0x01;
      const altered = `${dk1.wrapped.slice(0, dk1.wrapped.lastIndexOf(':') + 1)}${raw.toString('base64')}`;
      expect(await recordedCodeOf(keys.unwrapDataKey(n('tenant-a'), altered))).toBe('TAMPERED');
      expect(
        await recordedCodeOf(keys.unwrapDataKey(n('tenant-a'), dk1.wrapped.replace(/:v1:/, ':v9:'))),
      ).toBe('UNKNOWN_KEY');
      expect(await recordedCodeOf(keys.unwrapDataKey(n('tenant-a'), 'garbage'))).toBe('BAD_FORMAT');
      expect(await recordedCodeOf(keys.unwrapDataKey(n('tenant-a'), 42 as unknown as string))).toBe(
        'BAD_FORMAT',
      );
    });

    it('keeps every key across close and reopen', async () => {
      const signed = await keys.sign(n('release'), 'before reopen');
      const round = await keys.sealPublicKey(n('round-1'));
      const sealed = await seal(round.publicKey, 'kept', { info: 'i', aad: 'a' });
      const dk = await keys.generateDataKey(n('tenant-a'));
      dataKeyPlaintexts.push(dk.plaintext);
      await keys.close();
      expect(await recordedCodeOf(keys.sign(n('release'), 'after close'))).toBe('CLOSED');
      await keys.close(); // idempotent

      keys = await target.open();
      expect(await keys.verify(n('release'), 'before reopen', signed.signature, signed.version)).toBe(true);
      expect((await keys.publicKeys(n('release'))).length).toBe(2);
      expect(new TextDecoder().decode(await keys.open(n('round-1'), sealed, 'i', 'a'))).toBe('kept');
      expect(hex(await keys.unwrapDataKey(n('tenant-a'), dk.wrapped))).toBe(hex(dk.plaintext));
      expect((await keys.sign(n('release'), 'after reopen')).version).toBe(2);
    });

    it('reports health', async () => {
      const health = await keys.health();
      expect(health.ok).toBe(true);
      expect(health.backend).toBe(keys.backend);
    });

    it('never shows key material or tokens in errors or in what a logger prints', async () => {
      const secrets = [...(await target.secrets()), ...dataKeyPlaintexts.flatMap((k) => [b64(k), hex(k)])];
      expect(secrets.length).toBeGreaterThan(0);
      const printed = [
        JSON.stringify(keys),
        inspect(keys, { depth: 10, showHidden: true }),
        String(keys),
        ...seenErrors.flatMap((e) => [String(e), JSON.stringify(e), inspect(e, { depth: 10 })]),
      ].join('\n');
      expect(seenErrors.length).toBeGreaterThan(10);
      for (const secret of secrets) expect(printed).not.toContain(secret);
    });
  });
}
