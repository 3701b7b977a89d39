import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import { BoundedCache, cacheLoad } from '../bounded-cache.js';
import { fromBase64, toBase64, toBytes, type BytesLike } from '../bytes.js';
import type { VaultKeyProviderOptions } from '../config.js';
import {
  assertSignatureFormat,
  ED25519_PUBLIC_KEY_BYTES,
  importEd25519PublicKey,
  keyIdOf,
  verifyEd25519,
} from '../ed25519.js';
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
import { parseVaultCiphertext, VaultClient, type TransitKey } from './vault-client.js';
import { malformed } from './vault-errors.js';

export type { VaultKeyProviderOptions } from '../config.js';

/** Transit key types behind our key kinds. */
const TRANSIT_TYPE: Record<'signing' | 'kek', string> = { signing: 'ed25519', kek: 'aes256-gcm96' };

/** One version of a transit signing key: what publicKeys() returns, and the key imported for local matching. */
interface CachedVersion {
  info: SigningPublicKey;
  key: KeyObject;
}
type VersionMap = Map<number, CachedVersion>;

/** Names whose transit type and public keys are kept (each entry: a few versions of 32-byte public keys). */
const KEY_CACHE_ENTRIES = 1024;
/**
 * Seal (HPKE) private keys kept imported, by name, least recently used evicted: one per round an aggregator opens
 * updates for, so a few in use at a time; an evicted key is read from KV again on its next use. Kept small: these
 * are private keys, held in memory only while useful.
 */
export const SEAL_KEY_CACHE_ENTRIES = 64;

/**
 * KeyProvider over HashiCorp Vault:
 * - signing keys: transit keys of type ed25519 (`<transit>/keys|sign|verify/<name>`, `keys/<name>/rotate`);
 * - key-encryption keys: transit keys of type aes256-gcm96 (`<transit>/datakey/plaintext/<kek>`, `<transit>/decrypt/<kek>`);
 * - HPKE recipient keys: generated here, stored in KV v2 at `<kv>/data/<kvPrefix>/<name>`; the private half is only
 *   ever used inside this process to open messages, never returned.
 * The token and the client live in private fields: JSON.stringify/console.log show only endpoint and mounts.
 * This class is what the answers mean for keys, and the caches; Vault's HTTP API is vault-client.ts.
 */
export class VaultKeyProvider implements KeyProvider {
  readonly backend = 'vault' as const;
  readonly endpoint: string;
  readonly transitMount: string;
  readonly kvMount: string;
  readonly kvPrefix: string;
  readonly #vault: VaultClient;
  /** Imported HPKE private keys by name (bounded LRU), so a round's thousands of opens cost one KV read. */
  readonly #sealKeys = new BoundedCache<string, Promise<{ key: SealPrivateKey; createdAt: string }>>(
    SEAL_KEY_CACHE_ENTRIES,
  );
  #closed = false;

  private constructor(vault: VaultClient) {
    this.endpoint = vault.location.endpoint;
    this.transitMount = vault.location.transitMount;
    this.kvMount = vault.location.kvMount;
    this.kvPrefix = vault.location.kvPrefix;
    this.#vault = vault;
  }

  /** Validates the options and builds the client; contacts Vault only on the first call (see health()). */
  static async connect(options: VaultKeyProviderOptions): Promise<VaultKeyProvider> {
    return new VaultKeyProvider(VaultClient.create(options));
  }

  // ---- signing -------------------------------------------------------------------------------------------------

  async createSigningKey(name: string): Promise<SigningPublicKey> {
    await this.#createTransitKey(name, 'signing');
    const keys = await this.publicKeys(name);
    return keys[keys.length - 1]!;
  }

  async sign(name: string, data: BytesLike): Promise<SignatureResult> {
    assertKeyName(name);
    await this.#assertKind(name, 'signing');
    const parsed = parseVaultCiphertext(await this.#vault.sign(name, toBytes(data)));
    if (!parsed || parsed.bytes.byteLength !== 64) throw malformed('sign');
    const version = await this.#knownVersion(name, parsed.version);
    if (!version) throw malformed('sign');
    return { keyId: version.info.keyId, version: parsed.version, signature: parsed.bytes };
  }

  /**
   * Vault stays the authority (it enforces min_decryption_version and key policy), but the transit key is no longer
   * read on every call: a version's public key never changes, so the versions are cached and re-read only when a
   * version is missing (a rotation). Without a version, the signature can only be by the version whose public key
   * verifies it; that version is found locally and Vault is asked about it alone (one request instead of a key read
   * plus one per version). A version Vault no longer allows makes the answer false, as before.
   */
  async verify(name: string, data: BytesLike, signature: Uint8Array, version?: number): Promise<boolean> {
    assertSignatureFormat(signature);
    assertKeyName(name);
    const bytes = toBytes(data);
    if (version !== undefined) {
      assertVersion(version);
      if (!(await this.#knownVersion(name, version))) {
        throw new KeyError('UNKNOWN_KEY', `key "${name}" has no version ${version}`);
      }
      return this.#vault.verify(name, bytes, signature, version);
    }
    const matching = (versions: VersionMap): number | undefined =>
      [...versions.entries()]
        .sort(([a], [b]) => b - a)
        .find(([, v]) => verifyEd25519(v.key, bytes, signature))?.[0];
    const cached = await this.#versions(name);
    const match = matching(cached) ?? matching(await this.#versions(name, cached));
    if (match === undefined) return false;
    try {
      return await this.#vault.verify(name, bytes, signature, match);
    } catch (error) {
      if (error instanceof KeyError && error.code === 'KEY_DISABLED') return false;
      throw error;
    }
  }

  async publicKeys(name: string): Promise<SigningPublicKey[]> {
    assertKeyName(name);
    // A listing asks Vault (it is what verifiers and manifests are built from), and refreshes the cache.
    const versions = await this.#versions(name, 'refresh');
    return [...versions.values()].map((v) => v.info).sort((a, b) => a.version - b.version);
  }

  async rotate(name: string): Promise<KeyVersionInfo> {
    assertKeyName(name);
    let before: TransitKey;
    try {
      before = await this.#readTransitKey(name);
    } catch (error) {
      if (error instanceof KeyError && error.code === 'UNKNOWN_KEY' && (await this.#isSealKey(name))) {
        throw new KeyError(
          'KEY_TYPE_MISMATCH',
          `key "${name}" is a seal key; create a new seal key instead of rotating`,
        );
      }
      throw error;
    }
    const kind = kindOf(name, before.type);
    await this.#vault.rotateTransitKey(name);
    this.#keyCache.delete(name);
    const after = await this.#readTransitKey(name, kind);
    return this.#versionInfo(name, kind, after, after.latest_version);
  }

  // ---- HPKE recipient keys -------------------------------------------------------------------------------------

  async createSealKey(name: string): Promise<SealPublicKey> {
    assertKeyName(name);
    this.#assertOpen();
    try {
      return await this.sealPublicKey(name);
    } catch (error) {
      if (!(error instanceof KeyError) || error.code !== 'UNKNOWN_KEY') throw error;
    }
    const key = SealPrivateKey.generate();
    const createdAt = new Date().toISOString();
    try {
      await this.#vault.createSealSecret(name, {
        privateKey: toBase64(key.exportRaw()),
        publicKey: toBase64(key.publicKey),
        createdAt,
        suite: 'DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-256-GCM',
      });
    } catch (error) {
      // Lost a creation race (check-and-set mismatch): the winner's key is the key.
      if (
        !(error instanceof KeyError) ||
        error.code !== 'BACKEND_UNAVAILABLE' ||
        !/check-and-set/i.test(error.message)
      )
        throw error;
    }
    this.#sealKeys.delete(name);
    return this.sealPublicKey(name);
  }

  async sealPublicKey(name: string): Promise<SealPublicKey> {
    assertKeyName(name);
    const { key, createdAt } = await this.#sealKey(name);
    return { name, kind: 'seal', version: 1, keyId: key.keyId, createdAt, publicKey: key.publicKey };
  }

  async open(
    name: string,
    sealed: Sealed | Uint8Array,
    info: BytesLike = '',
    aad: BytesLike = '',
  ): Promise<Uint8Array> {
    assertKeyName(name);
    const { key } = await this.#sealKey(name);
    return key.open(sealed, { info, aad });
  }

  async deleteSealKey(name: string): Promise<void> {
    assertKeyName(name);
    this.#sealKeys.delete(name);
    try {
      await this.#vault.deleteSealSecret(name);
    } catch (error) {
      if (!(error instanceof KeyError) || error.code !== 'UNKNOWN_KEY') throw error;
    }
  }

  // ---- envelope encryption -------------------------------------------------------------------------------------

  async createKeyEncryptionKey(name: string): Promise<KeyVersionInfo> {
    const key = await this.#createTransitKey(name, 'kek');
    return this.#versionInfo(name, 'kek', key, key.latest_version);
  }

  async generateDataKey(kekName: string): Promise<DataKey> {
    assertKeyName(kekName);
    await this.#assertKind(kekName, 'kek');
    const answer = await this.#vault.generateDataKey(kekName);
    const plaintext = fromBase64(answer.plaintext);
    const wrapped = parseVaultCiphertext(answer.ciphertext);
    if (!plaintext || plaintext.byteLength !== 32 || !wrapped) throw malformed('datakey');
    return { plaintext, wrapped: answer.ciphertext, kekVersion: wrapped.version };
  }

  async unwrapDataKey(kekName: string, wrapped: string): Promise<Uint8Array> {
    assertKeyName(kekName);
    if (typeof wrapped !== 'string' || !parseVaultCiphertext(wrapped)) {
      throw new KeyError(
        'BAD_FORMAT',
        'not a wrapped data key of the Vault key provider (vault:v<N>:<base64>)',
      );
    }
    const plaintext = fromBase64(await this.#vault.decrypt(kekName, wrapped));
    if (!plaintext) throw malformed('decrypt');
    return plaintext;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  async health(): Promise<KeyProviderHealth> {
    const down = (detail: string): KeyProviderHealth => ({ ok: false, backend: 'vault', detail });
    if (this.#closed) return down('closed');
    try {
      const status = await this.#vault.health();
      if (!status) return down(`Vault at ${this.endpoint} gave an unexpected health answer`);
      if (!status.initialized || status.sealed)
        return down(`Vault at ${this.endpoint} is ${status.sealed ? 'sealed' : 'not initialised'}`);
      await this.#vault.lookUpToken();
      const detail = `Vault ${status.version ?? ''} at ${this.endpoint}`.replace('  ', ' ');
      return { ok: true, backend: 'vault', detail };
    } catch (error) {
      return down(error instanceof KeyError ? error.message : 'Vault health check failed');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sealKeys.clear();
    this.#keyCache.clear();
    this.#types.clear();
    this.#vault.close();
  }

  toJSON(): { backend: 'vault'; endpoint: string; transitMount: string; kvMount: string; kvPrefix: string } {
    return {
      backend: 'vault',
      endpoint: this.endpoint,
      transitMount: this.transitMount,
      kvMount: this.kvMount,
      kvPrefix: this.kvPrefix,
    };
  }

  [inspect.custom](): string {
    return `VaultKeyProvider { endpoint: '${this.endpoint}', transit: '${this.transitMount}', kv: '${this.kvMount}' }`;
  }

  // ---- internals -----------------------------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closed) throw new KeyError('CLOSED', 'the key provider is closed');
  }

  /** Transit key types by name: a type never changes, so one read per name answers every later type check. */
  readonly #types = new BoundedCache<string, string>(KEY_CACHE_ENTRIES);
  async #assertKind(name: string, kind: 'signing' | 'kek'): Promise<void> {
    const type = this.#types.get(name);
    if (type === undefined) await this.#readTransitKey(name, kind);
    else if (type !== TRANSIT_TYPE[kind]) throw notOfKind(name, type, kind);
  }

  async #readTransitKey(name: string, kind?: 'signing' | 'kek'): Promise<TransitKey> {
    assertKeyName(name);
    const key = await this.#vault.readTransitKey(name);
    this.#types.set(name, key.type);
    if (kind !== undefined && key.type !== TRANSIT_TYPE[kind]) throw notOfKind(name, key.type, kind);
    return key;
  }

  async #createTransitKey(name: string, kind: 'signing' | 'kek'): Promise<TransitKey> {
    assertKeyName(name);
    try {
      return await this.#readTransitKey(name, kind);
    } catch (error) {
      if (!(error instanceof KeyError) || error.code !== 'UNKNOWN_KEY') throw error;
    }
    // Creating an existing transit key is a no-op in Vault, so a creation race is harmless; the type is re-checked.
    await this.#vault.createTransitKey(name, TRANSIT_TYPE[kind]);
    return this.#readTransitKey(name, kind);
  }

  /**
   * Public keys by version, per signing key name. A version never changes, so a read answers every later call until
   * a version is missing (a rotation, here or in another replica). The entry is the read in flight, so concurrent
   * callers share one request; a failed read is not kept.
   */
  readonly #keyCache = new BoundedCache<string, Promise<VersionMap>>(KEY_CACHE_ENTRIES);

  /**
   * The cached versions of a signing key; `stale` (the map a caller found lacking) or 'refresh' reads Vault again,
   * unless another caller already replaced that map (then its newer read is shared).
   */
  #versions(name: string, stale?: VersionMap | 'refresh'): Promise<VersionMap> {
    const cached = this.#keyCache.get(name);
    if (cached && stale === undefined) return cached;
    if (cached && stale !== undefined && stale !== 'refresh') {
      const replaced = cached.then(
        (current) => current !== stale,
        () => false,
      );
      return replaced.then((yes) => (yes ? cached : this.#readVersions(name)));
    }
    return this.#readVersions(name);
  }

  #readVersions(name: string): Promise<VersionMap> {
    return cacheLoad(this.#keyCache, name, async () => {
      const key = await this.#readTransitKey(name, 'signing');
      const map: VersionMap = new Map();
      for (const [v, entry] of Object.entries(key.keys)) {
        const info = this.#versionInfo(name, 'signing', key, Number(v));
        const publicKey =
          typeof entry === 'object' && entry.public_key ? fromBase64(entry.public_key) : undefined;
        if (!publicKey || publicKey.byteLength !== ED25519_PUBLIC_KEY_BYTES) throw malformed('keys');
        let imported: KeyObject;
        try {
          imported = importEd25519PublicKey(publicKey);
        } catch {
          throw malformed('keys');
        }
        map.set(Number(v), {
          info: { ...info, kind: 'signing', keyId: keyIdOf(publicKey), publicKey },
          key: imported,
        });
      }
      return map;
    });
  }

  /** One version of a signing key, reading Vault again once when it is not (yet) known here. */
  async #knownVersion(name: string, version: number): Promise<CachedVersion | undefined> {
    const cached = await this.#versions(name);
    return cached.get(version) ?? (await this.#versions(name, cached)).get(version);
  }

  #versionInfo(name: string, kind: KeyKind, key: TransitKey, version: number): KeyVersionInfo {
    const entry = key.keys[String(version)];
    let createdAt = new Date(0).toISOString();
    if (typeof entry === 'number') createdAt = new Date(entry * 1000).toISOString();
    else if (entry?.creation_time && !Number.isNaN(Date.parse(entry.creation_time)))
      createdAt = new Date(entry.creation_time).toISOString();
    let keyId = `${name}@v${version}`;
    if (kind === 'signing' && typeof entry === 'object' && entry.public_key) {
      const publicKey = fromBase64(entry.public_key);
      if (publicKey) keyId = keyIdOf(publicKey);
    }
    return { name, kind, version, keyId, createdAt };
  }

  async #isSealKey(name: string): Promise<boolean> {
    try {
      await this.#sealKey(name);
      return true;
    } catch {
      return false;
    }
  }

  #sealKey(name: string): Promise<{ key: SealPrivateKey; createdAt: string }> {
    this.#assertOpen();
    return (
      this.#sealKeys.get(name) ??
      cacheLoad(this.#sealKeys, name, async () => {
        const secret = await this.#vault.readSealSecret(name);
        if (!secret)
          throw new KeyError(
            'KEY_TYPE_MISMATCH',
            `the secret of seal key "${name}" is not an edgefl HPKE key`,
          );
        const raw = fromBase64(secret.privateKey);
        if (!raw) throw new KeyError('BAD_PRIVATE_KEY', `the secret of seal key "${name}" is not base64`);
        return { key: await SealPrivateKey.fromRaw(raw), createdAt: secret.createdAt };
      })
    );
  }
}

function kindOf(name: string, type: string): 'signing' | 'kek' {
  if (type === TRANSIT_TYPE.signing) return 'signing';
  if (type === TRANSIT_TYPE.kek) return 'kek';
  throw new KeyError(
    'KEY_TYPE_MISMATCH',
    `transit key "${name}" has type ${type}, which edgefl does not use`,
  );
}

function notOfKind(name: string, type: string, kind: 'signing' | 'kek'): KeyError {
  return new KeyError('KEY_TYPE_MISMATCH', `key "${name}" is a ${kindOf(name, type)} key, not a ${kind} key`);
}
