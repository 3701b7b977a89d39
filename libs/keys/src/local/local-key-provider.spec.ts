import { chmod, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir, thrownBy } from '@edgefl/testing';
import { KeyError } from '../errors.js';
import { createKeyProvider } from '../factory.js';
import { KEYRING_FORMAT, KEYRING_FORMAT_VERSION } from './keyring-file.js';
import { LocalKeyProvider } from './local-key-provider.js';

const posix = process.platform !== 'win32';

/** `CODE: message` of the KeyError an action threw: the message must name the problem too. */
async function codeAndMessage(action: Promise<unknown>): Promise<string> {
  const thrown = await thrownBy(KeyError, action);
  return 'error' in thrown && thrown.error instanceof KeyError
    ? `${thrown.code}: ${thrown.error.message}`
    : thrown.code;
}

describe('local keyring file', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let path: string;
  beforeEach(async () => {
    dir = await tempDir('edgefl-keyring-');
    path = join(dir.path, 'nested', 'keyring.json');
  });
  afterEach(() => dir.remove());

  it.skipIf(!posix)(
    'creates the keyring with mode 0600 in a 0700 directory, and keeps 0600 on every write',
    async () => {
      const keys = await LocalKeyProvider.open({ path });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir.path, 'nested'))).mode & 0o777).toBe(0o700);
      await keys.createSigningKey('release');
      await keys.rotate('release');
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      // Atomic writes leave no temp or lock file behind.
      expect(await readdir(join(dir.path, 'nested'))).toEqual(['keyring.json']);
      await keys.close();
    },
  );

  it.skipIf(!posix)('refuses a keyring readable by group or others, naming the fix', async () => {
    await (await LocalKeyProvider.open({ path })).close();
    await chmod(path, 0o644);
    const refused = await codeAndMessage(LocalKeyProvider.open({ path }));
    expect(refused).toMatch(/^KEYRING_INSECURE: .*0644.*chmod 600/);
    await chmod(path, 0o640);
    expect(await codeAndMessage(LocalKeyProvider.open({ path }))).toMatch(/^KEYRING_INSECURE/);
    await chmod(path, 0o600);
    expect(await codeAndMessage(LocalKeyProvider.open({ path }))).toBe('no error');
  });

  it.skipIf(!posix)('refuses a keyring that is a symbolic link', async () => {
    const keys = await LocalKeyProvider.open({ path });
    await keys.close();
    const link = join(dir.path, 'link.json');
    await symlink(path, link);
    expect(await codeAndMessage(LocalKeyProvider.open({ path: link }))).toMatch(
      /^KEYRING_INSECURE: .*symbolic link/,
    );
  });

  it('writes a versioned format and refuses corrupt or future files without quoting their content', async () => {
    const keys = await LocalKeyProvider.open({ path });
    await keys.createKeyEncryptionKey('tenant-a');
    await keys.close();
    const doc = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    expect(doc['format']).toBe(KEYRING_FORMAT);
    expect(doc['formatVersion']).toBe(KEYRING_FORMAT_VERSION);
    const secret = (doc['keys'] as Record<string, { versions: { secret: string }[] }>)['tenant-a']!
      .versions[0]!.secret;

    await writeFile(path, JSON.stringify({ ...doc, formatVersion: 2 }), { mode: 0o600 });
    expect(await codeAndMessage(LocalKeyProvider.open({ path }))).toMatch(
      /^KEYRING_CORRUPT: .*format version 2/,
    );

    await writeFile(path, '{ not json', { mode: 0o600 });
    expect(await codeAndMessage(LocalKeyProvider.open({ path }))).toMatch(/^KEYRING_CORRUPT/);

    const broken = {
      ...doc,
      keys: { 'tenant-a': { kind: 'kek', versions: [{ version: 'one', createdAt: 'x', secret }] } },
    };
    await writeFile(path, JSON.stringify(broken), { mode: 0o600 });
    const error = await codeAndMessage(LocalKeyProvider.open({ path }));
    expect(error).toMatch(/^KEYRING_CORRUPT: .*keys\.tenant-a\.versions\.0\.version/);
    expect(error).not.toContain(secret);
  });

  it('two providers on one file see each other’s keys and lose none under concurrent changes', async () => {
    const a = await LocalKeyProvider.open({ path });
    const b = await LocalKeyProvider.open({ path });
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => a.createSigningKey(`a-${i}`)),
      ...Array.from({ length: 8 }, (_, i) => b.createKeyEncryptionKey(`b-${i}`)),
    ]);
    // b learns about a's keys (and a's rotation) without reopening.
    const signed = await a.sign('a-3', 'x');
    expect(await b.verify('a-3', 'x', signed.signature)).toBe(true);
    await a.rotate('a-3');
    expect((await b.sign('a-3', 'y')).version).toBe(2);
    const dk = await b.generateDataKey('b-5');
    expect(Buffer.from(await a.unwrapDataKey('b-5', dk.wrapped)).equals(Buffer.from(dk.plaintext))).toBe(
      true,
    );

    const c = await LocalKeyProvider.open({ path });
    for (let i = 0; i < 8; i++) {
      expect((await c.publicKeys(`a-${i}`)).length).toBe(i === 3 ? 2 : 1);
      expect((await c.createKeyEncryptionKey(`b-${i}`)).version).toBe(1);
    }
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('verifies with a version another provider created after this one cached the key', async () => {
    const a = await LocalKeyProvider.open({ path });
    const b = await LocalKeyProvider.open({ path });
    await a.createSigningKey('rotating');
    const v1 = await a.sign('rotating', 'm');
    expect(await b.verify('rotating', 'm', v1.signature)).toBe(true); // b caches version 1
    await a.rotate('rotating');
    const v2 = await a.sign('rotating', 'm');
    expect(v2.version).toBe(2);
    expect(await b.verify('rotating', 'm', v2.signature, 2)).toBe(true);
    expect(await b.verify('rotating', 'm', v2.signature)).toBe(true);
    expect(await b.verify('rotating', 'm', v2.signature, 1)).toBe(false);
    expect(await b.verify('rotating', 'other', v2.signature)).toBe(false);
    await a.rotate('rotating');
    expect((await b.sign('rotating', 'm')).version).toBe(3); // signing sees the newest version at once
    await Promise.all([a.close(), b.close()]);
  });

  it('takes over a lock left by a process that no longer exists', async () => {
    const keys = await LocalKeyProvider.open({ path });
    await writeFile(`${path}.lock`, '999999999', { mode: 0o600 }); // no such pid
    await keys.createSigningKey('after-crash');
    expect((await keys.publicKeys('after-crash')).length).toBe(1);
    await keys.close();
  });

  it('rejects bad configuration', async () => {
    expect(await codeAndMessage(createKeyProvider({ kind: 'local', path: '' }))).toMatch(/^BAD_CONFIG/);
    expect(await codeAndMessage(createKeyProvider({ kind: 'nope' } as never))).toMatch(/^BAD_CONFIG/);
    expect(await codeAndMessage(createKeyProvider(undefined as never))).toMatch(/^BAD_CONFIG/);
    expect(
      await codeAndMessage(createKeyProvider({ kind: 'vault', endpoint: 'ftp://x', token: 't' })),
    ).toMatch(/^BAD_CONFIG/);
    expect(
      await codeAndMessage(createKeyProvider({ kind: 'vault', endpoint: 'http://127.0.0.1:1', token: '' })),
    ).toMatch(/^BAD_CONFIG/);
    expect(
      await codeAndMessage(
        createKeyProvider({
          kind: 'vault',
          endpoint: 'http://127.0.0.1:1',
          token: 't',
          transitMount: '../sys',
        }),
      ),
    ).toMatch(/^BAD_CONFIG/);
  });
});
