import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { inspect } from 'node:util';
import { BoundedCache } from '../bounded-cache.js';
import { fromBase64, toBase64, toBytes, type BytesLike } from '../bytes.js';
import { assertSignatureFormat, Ed25519SigningKey } from '../ed25519.js';
import { KeyError } from '../errors.js';
import { SealPrivateKey, type Sealed } from '../hpke.js';
import {
  assertKeyName,
  assertVersion,
  type DataKey,
  type KeyKind,
  type KeyProvider,
  type KeyProviderHealth,
  type KeyVersionInfo,
  type SealPublicKey,
  type SignatureResult,
  type SigningPublicKey,
} from '../port.js';
import {
  emptyKeyring,
  fileStampSync,
  readKeyring,
  sameStamp,
  withKeyringLock,
  writeKeyring,
  type FileStamp,
  type KeyringDocument,
  type KeyringEntry,
  type KeyringVersion,
} from './keyring-file.js';

export interface LocalKeyProviderOptions {
  /** Path of the keyring file; created (mode 0600, directory 0700) when missing. */
  path: string;
}

type Material = Ed25519SigningKey | SealPrivateKey | Uint8Array;

const WRAPPED_PREFIX = 'edgefl:v';
const MATERIAL_CACHE_ENTRIES = 1024;
const WRAP_IV_BYTES = 12;
const WRAP_TAG_BYTES = 16;

/**
 * KeyProvider over a local keyring file (see keyring-file.ts for the format). For one machine and for tests; all
 * private material stays in private fields, so JSON.stringify/console.log of the provider show only its path.
 */
export class LocalKeyProvider implements KeyProvider {
  readonly backend = 'local' as const;
  readonly path: string;
  #doc: KeyringDocument;
  #stamp: FileStamp | undefined;
  /**
   * Materialised keys (parsed private key, imported public key), by their stored secret: a version never changes,
   * so it is parsed once; bounded, so a long-lived process with many rotations does not grow without limit.
   */
  readonly #materials = new BoundedCache<string, Material>(MATERIAL_CACHE_ENTRIES);
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(path: string, doc: KeyringDocument, stamp: FileStamp | undefined) {
    this.path = path;
    this.#doc = doc;
    this.#stamp = stamp;
  }

  /** Opens (or creates) a keyring. KeyError KEYRING_INSECURE when the file is group/world accessible. */
  static async open(options: LocalKeyProviderOptions): Promise<LocalKeyProvider> {
    if (typeof options?.path !== 'string' || options.path.length === 0) {
      throw new KeyError('BAD_CONFIG', 'the local key provider needs a keyring path');
    }
    const path = resolve(options.path);
    const existing = await readKeyring(path);
    if (existing) return new LocalKeyProvider(path, existing.doc, existing.stamp);
    return withKeyringLock(path, async () => {
      const raced = await readKeyring(path);
      if (raced) return new LocalKeyProvider(path, raced.doc, raced.stamp);
      const doc = emptyKeyring();
      const stamp = await writeKeyring(path, doc);
      return new LocalKeyProvider(path, doc, stamp);
    });
  }

  // ---- signing -------------------------------------------------------------------------------------------------

  async createSigningKey(name: string): Promise<SigningPublicKey> {
    assertKeyName(name);
    await this.#mutate((doc) => {
      const entry = doc.keys[name];
      if (entry) return assertKind(name, entry, 'signing');
      doc.keys[name] = {
        kind: 'signing',
        versions: [newVersion(1, Ed25519SigningKey.generate().exportPkcs8())],
      };
    });
    const keys = await this.publicKeys(name);
    return keys[keys.length - 1]!;
  }

  async sign(name: string, data: BytesLike): Promise<SignatureResult> {
    const { version } = await this.#latest(name, 'signing');
    const key = this.#signingKey(version);
    return { keyId: key.keyId, version: version.version, signature: key.sign(toBytes(data)) };
  }

  async verify(name: string, data: BytesLike, signature: Uint8Array, version?: number): Promise<boolean> {
    assertSignatureFormat(signature);
    const entry = await this.#entry(name, 'signing');
    const candidates =
      version === undefined ? [...entry.versions].reverse() : [await this.#version(name, entry, version)];
    const bytes = toBytes(data);
    return candidates.some((v) => this.#signingKey(v).verify(bytes, signature));
  }

  async publicKeys(name: string): Promise<SigningPublicKey[]> {
    const entry = await this.#entry(name, 'signing');
    return entry.versions.map((v) => {
      const key = this.#signingKey(v);
      return {
        name,
        kind: 'signing',
        version: v.version,
        keyId: key.keyId,
        createdAt: v.createdAt,
        publicKey: key.publicKey,
      };
    });
  }

  async rotate(name: string): Promise<KeyVersionInfo> {
    assertKeyName(name);
    let kind: KeyKind = 'signing';
    let created: KeyringVersion | undefined;
    await this.#mutate((doc) => {
      const entry = doc.keys[name];
      if (!entry) throw unknownKey(name);
      if (entry.kind === 'seal') {
        throw new KeyError(
          'KEY_TYPE_MISMATCH',
          `key "${name}" is a seal key; create a new seal key instead of rotating`,
        );
      }
      kind = entry.kind;
      const next = Math.max(...entry.versions.map((v) => v.version)) + 1;
      created = newVersion(
        next,
        entry.kind === 'signing' ? Ed25519SigningKey.generate().exportPkcs8() : randomBytes(32),
      );
      entry.versions.push(created);
    });
    const v = created!;
    const keyId = kind === 'signing' ? this.#signingKey(v).keyId : `${name}@v${v.version}`;
    return { name, kind, version: v.version, keyId, createdAt: v.createdAt };
  }

  // ---- HPKE recipient keys -------------------------------------------------------------------------------------

  async createSealKey(name: string): Promise<SealPublicKey> {
    assertKeyName(name);
    await this.#mutate((doc) => {
      const entry = doc.keys[name];
      if (entry) return assertKind(name, entry, 'seal');
      doc.keys[name] = { kind: 'seal', versions: [newVersion(1, SealPrivateKey.generate().exportRaw())] };
    });
    return this.sealPublicKey(name);
  }

  async sealPublicKey(name: string): Promise<SealPublicKey> {
    const { version } = await this.#latest(name, 'seal');
    const key = await this.#sealKey(version);
    return {
      name,
      kind: 'seal',
      version: version.version,
      keyId: key.keyId,
      createdAt: version.createdAt,
      publicKey: key.publicKey,
    };
  }

  async open(
    name: string,
    sealed: Sealed | Uint8Array,
    info: BytesLike = '',
    aad: BytesLike = '',
  ): Promise<Uint8Array> {
    const { version } = await this.#latest(name, 'seal');
    const key = await this.#sealKey(version);
    return key.open(sealed, { info, aad });
  }

  async deleteSealKey(name: string): Promise<void> {
    assertKeyName(name);
    await this.#mutate((doc) => {
      const entry = doc.keys[name];
      if (!entry) return;
      assertKind(name, entry, 'seal');
      for (const v of entry.versions) this.#materials.delete(v.secret);
      delete doc.keys[name];
    });
  }

  // ---- envelope encryption -------------------------------------------------------------------------------------

  async createKeyEncryptionKey(name: string): Promise<KeyVersionInfo> {
    assertKeyName(name);
    await this.#mutate((doc) => {
      const entry = doc.keys[name];
      if (entry) return assertKind(name, entry, 'kek');
      doc.keys[name] = { kind: 'kek', versions: [newVersion(1, randomBytes(32))] };
    });
    const { version } = await this.#latest(name, 'kek');
    return {
      name,
      kind: 'kek',
      version: version.version,
      keyId: `${name}@v${version.version}`,
      createdAt: version.createdAt,
    };
  }

  async generateDataKey(kekName: string): Promise<DataKey> {
    const { version } = await this.#latest(kekName, 'kek');
    const plaintext = new Uint8Array(randomBytes(32));
    const iv = randomBytes(WRAP_IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#kek(version), iv, { authTagLength: WRAP_TAG_BYTES });
    cipher.setAAD(wrapAad(kekName, version.version));
    const body = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      plaintext,
      wrapped: `${WRAPPED_PREFIX}${version.version}:${body.toString('base64')}`,
      kekVersion: version.version,
    };
  }

  async unwrapDataKey(kekName: string, wrapped: string): Promise<Uint8Array> {
    const entry = await this.#entry(kekName, 'kek');
    const match = typeof wrapped === 'string' ? /^edgefl:v([1-9][0-9]{0,8}):(.+)$/.exec(wrapped) : null;
    const body = match ? fromBase64(match[2]!) : undefined;
    if (!match || !body || body.byteLength !== WRAP_IV_BYTES + 32 + WRAP_TAG_BYTES) {
      throw new KeyError(
        'BAD_FORMAT',
        'not a wrapped data key of the local key provider (edgefl:v<N>:<base64>)',
      );
    }
    const version = await this.#version(kekName, entry, Number(match[1]));
    const decipher = createDecipheriv('aes-256-gcm', this.#kek(version), body.subarray(0, WRAP_IV_BYTES), {
      authTagLength: WRAP_TAG_BYTES,
    });
    decipher.setAAD(wrapAad(kekName, version.version));
    decipher.setAuthTag(body.subarray(body.byteLength - WRAP_TAG_BYTES));
    try {
      return new Uint8Array(
        Buffer.concat([
          decipher.update(body.subarray(WRAP_IV_BYTES, body.byteLength - WRAP_TAG_BYTES)),
          decipher.final(),
        ]),
      );
    } catch {
      throw new KeyError(
        'TAMPERED',
        `wrapped data key does not authenticate under "${kekName}" v${version.version}`,
      );
    }
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  async health(): Promise<KeyProviderHealth> {
    if (this.#closed) return { ok: false, backend: 'local', detail: 'closed' };
    try {
      await readKeyring(this.path);
      return {
        ok: true,
        backend: 'local',
        detail: `keyring ${this.path}, ${Object.keys(this.#doc.keys).length} keys`,
      };
    } catch (error) {
      return {
        ok: false,
        backend: 'local',
        detail: error instanceof KeyError ? error.message : 'keyring unreadable',
      };
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    this.#materials.clear();
    this.#doc = emptyKeyring();
  }

  toJSON(): { backend: 'local'; path: string } {
    return { backend: 'local', path: this.path };
  }

  [inspect.custom](): string {
    return `LocalKeyProvider { path: '${this.path}' }`;
  }

  // ---- internals -----------------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new KeyError('CLOSED', 'the key provider is closed');
  }

  /** Runs a change under the in-process queue and the cross-process file lock, on the freshest file content. */
  async #mutate(change: (doc: KeyringDocument) => void): Promise<void> {
    this.#assertOpen();
    const run = this.#queue.then(() =>
      withKeyringLock(this.path, async () => {
        this.#assertOpen();
        const current = await readKeyring(this.path);
        const doc = current ? current.doc : emptyKeyring();
        const before = JSON.stringify(doc);
        change(doc);
        if (JSON.stringify(doc) !== before) {
          this.#stamp = await writeKeyring(this.path, doc);
        } else {
          this.#stamp = current?.stamp;
        }
        this.#doc = doc;
      }),
    );
    this.#queue = run.catch(() => undefined);
    await run;
  }

  /** The entry of a name, re-reading the file first when another process changed it. */
  async #entry(name: string, kind: KeyKind): Promise<KeyringEntry> {
    assertKeyName(name);
    this.#assertOpen();
    let entry = this.#doc.keys[name];
    if (!entry) {
      await this.#refreshIfChanged();
      entry = this.#doc.keys[name];
    }
    if (!entry) throw unknownKey(name);
    assertKind(name, entry, kind);
    return entry;
  }

  async #latest(name: string, kind: KeyKind): Promise<{ entry: KeyringEntry; version: KeyringVersion }> {
    // Another process may have rotated: a cheap stat decides whether to re-read.
    await this.#refreshIfChanged();
    const entry = await this.#entry(name, kind);
    const version = entry.versions.reduce((a, b) => (b.version > a.version ? b : a));
    return { entry, version };
  }

  async #version(name: string, entry: KeyringEntry, version: number): Promise<KeyringVersion> {
    assertVersion(version);
    let found = entry.versions.find((v) => v.version === version);
    if (!found) {
      await this.#refreshIfChanged();
      found = this.#doc.keys[name]?.versions.find((v) => v.version === version);
    }
    if (!found) throw new KeyError('UNKNOWN_KEY', `key "${name}" has no version ${version}`);
    return found;
  }

  /** Re-reads the file when its stamp changed: the one check that makes another process's rotation visible. */
  async #refreshIfChanged(): Promise<void> {
    let stamp: FileStamp | undefined;
    try {
      stamp = fileStampSync(this.path);
    } catch {
      stamp = undefined; // unreadable directory and the like: readKeyring below reports it properly
    }
    if (sameStamp(stamp, this.#stamp)) return;
    const current = await readKeyring(this.path);
    this.#assertOpen();
    if (current) {
      this.#doc = current.doc;
      this.#stamp = current.stamp;
    }
  }

  #secret(v: KeyringVersion): Uint8Array {
    const bytes = fromBase64(v.secret);
    if (!bytes)
      throw new KeyError('KEYRING_CORRUPT', `keyring ${this.path} holds a key version that is not base64`);
    return bytes;
  }

  #signingKey(v: KeyringVersion): Ed25519SigningKey {
    const cached = this.#materials.get(v.secret);
    if (cached instanceof Ed25519SigningKey) return cached;
    let key: Ed25519SigningKey;
    try {
      key = Ed25519SigningKey.fromPkcs8(this.#secret(v));
    } catch {
      throw new KeyError(
        'KEYRING_CORRUPT',
        `keyring ${this.path} holds a signing key version ${v.version} that does not parse`,
      );
    }
    this.#materials.set(v.secret, key);
    return key;
  }

  async #sealKey(v: KeyringVersion): Promise<SealPrivateKey> {
    const cached = this.#materials.get(v.secret);
    if (cached instanceof SealPrivateKey) return cached;
    let key: SealPrivateKey;
    try {
      key = await SealPrivateKey.fromRaw(this.#secret(v));
    } catch {
      throw new KeyError('KEYRING_CORRUPT', `keyring ${this.path} holds a seal key that does not parse`);
    }
    this.#materials.set(v.secret, key);
    return key;
  }

  #kek(v: KeyringVersion): Uint8Array {
    const key = this.#secret(v);
    if (key.byteLength !== 32)
      throw new KeyError(
        'KEYRING_CORRUPT',
        `keyring ${this.path} holds a key-encryption key that is not 32 bytes`,
      );
    return key;
  }
}

function newVersion(version: number, secret: Uint8Array): KeyringVersion {
  return { version, createdAt: new Date().toISOString(), secret: toBase64(secret) };
}

function assertKind(name: string, entry: KeyringEntry, kind: KeyKind): void {
  if (entry.kind !== kind) {
    throw new KeyError('KEY_TYPE_MISMATCH', `key "${name}" is a ${entry.kind} key, not a ${kind} key`);
  }
}

function unknownKey(name: string): KeyError {
  return new KeyError('UNKNOWN_KEY', `no key named "${name}"`);
}

/** Binds a wrapped data key to its key-encryption key's name and version. */
function wrapAad(kekName: string, version: number): Uint8Array {
  return toBytes(`edgefl-datakey\0${kekName}\0${version}`);
}
