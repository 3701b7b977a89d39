import type { KeyObject } from 'node:crypto';
import { inspect } from 'node:util';
import NodeVault from 'node-vault';
import { z } from 'zod';
import { BoundedCache } from '../bounded-cache.js';
import { fromBase64, toBase64, toBytes, type BytesLike } from '../bytes.js';
import type { VaultKeyProviderOptions } from '../config.js';
import {
  assertSignatureFormat,
  ED25519_PUBLIC_KEY_BYTES,
  importEd25519PublicKey,
  keyIdOf,
  verifyEd25519,
} from '../ed25519.js';
import { KeyError, type KeyErrorCode } from '../errors.js';
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

export type { VaultKeyProviderOptions } from '../config.js';

/** Transit key types behind our key kinds. */
const TRANSIT_TYPE: Record<'signing' | 'kek', string> = { signing: 'ed25519', kek: 'aes256-gcm96' };
const MOUNT = /^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)*$/;

// ---- response shapes (Vault is an input boundary too: every answer is checked before use) ----------------------
const transitKeySchema = z.object({
  data: z.object({
    type: z.string(),
    latest_version: z.number().int().positive(),
    min_decryption_version: z.number().int().nonnegative().optional(),
    // ed25519: { "1": { public_key, creation_time, name } }; symmetric keys: { "1": <unix seconds> }.
    keys: z.record(
      z.string(),
      z.union([
        z.number(),
        z.object({ public_key: z.string().optional(), creation_time: z.string().optional() }),
      ]),
    ),
  }),
});
const signSchema = z.object({ data: z.object({ signature: z.string() }) });
const verifySchema = z.object({ data: z.object({ valid: z.boolean() }) });
const dataKeySchema = z.object({ data: z.object({ plaintext: z.string(), ciphertext: z.string() }) });
const decryptSchema = z.object({ data: z.object({ plaintext: z.string() }) });
const sealSecretSchema = z.object({
  data: z.object({
    data: z.object({ privateKey: z.string(), publicKey: z.string(), createdAt: z.string() }),
  }),
});
const healthSchema = z.object({
  initialized: z.boolean(),
  sealed: z.boolean(),
  version: z.string().optional(),
});

type TransitKey = z.infer<typeof transitKeySchema>['data'];

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
 */
export class VaultKeyProvider implements KeyProvider {
  readonly backend = 'vault' as const;
  readonly endpoint: string;
  readonly transitMount: string;
  readonly kvMount: string;
  readonly kvPrefix: string;
  readonly #client: NodeVault.client;
  /** Imported HPKE private keys by name (bounded LRU), so a round's thousands of opens cost one KV read. */
  readonly #sealKeys = new BoundedCache<string, Promise<{ key: SealPrivateKey; createdAt: string }>>(
    SEAL_KEY_CACHE_ENTRIES,
  );
  #closed = false;

  private constructor(
    options: Required<Pick<VaultKeyProviderOptions, 'endpoint' | 'transitMount' | 'kvMount' | 'kvPrefix'>>,
    client: NodeVault.client,
  ) {
    this.endpoint = options.endpoint;
    this.transitMount = options.transitMount;
    this.kvMount = options.kvMount;
    this.kvPrefix = options.kvPrefix;
    this.#client = client;
  }

  /** Validates the options and builds the client; contacts Vault only on the first call (see health()). */
  static async connect(options: VaultKeyProviderOptions): Promise<VaultKeyProvider> {
    if (typeof options !== 'object' || options === null)
      throw new KeyError('BAD_CONFIG', 'Vault options are required');
    let endpoint: string;
    try {
      const url = new URL(options.endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
      endpoint = url.origin + url.pathname.replace(/\/+$/, '');
    } catch {
      throw new KeyError('BAD_CONFIG', 'Vault endpoint must be an http(s) URL');
    }
    if (typeof options.token !== 'string' || options.token.trim() === '') {
      throw new KeyError('BAD_CONFIG', 'a Vault token is required');
    }
    const transitMount = trimMount(options.transitMount ?? 'transit', 'transitMount');
    const kvMount = trimMount(options.kvMount ?? 'secret', 'kvMount');
    const kvPrefix = trimMount(options.kvPrefix ?? 'edgefl/hpke', 'kvPrefix');
    const timeout = options.requestTimeoutMs ?? 10_000;
    if (!Number.isFinite(timeout) || timeout <= 0)
      throw new KeyError('BAD_CONFIG', 'requestTimeoutMs must be positive');
    const client = NodeVault({
      apiVersion: 'v1',
      endpoint,
      token: options.token,
      ...(options.namespace ? { namespace: options.namespace } : {}),
      requestOptions: { timeout },
      // node-vault's default debug logger prints request bodies (plaintexts, data keys) when DEBUG=node-vault.
      debug: () => undefined,
    });
    return new VaultKeyProvider({ endpoint, transitMount, kvMount, kvPrefix }, client);
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
    const answer = signSchema.safeParse(
      await this.#call(
        `sign with "${name}"`,
        (c) => c.write(`${this.transitMount}/sign/${name}`, { input: toBase64(toBytes(data)) }),
        'signing',
      ),
    );
    const parsed = answer.success ? parseVaultCiphertext(answer.data.data.signature) : undefined;
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
      return this.#verifyInVault(name, bytes, signature, version);
    }
    const matching = (versions: VersionMap): number | undefined =>
      [...versions.entries()]
        .sort(([a], [b]) => b - a)
        .find(([, v]) => verifyEd25519(v.key, bytes, signature))?.[0];
    const cached = await this.#versions(name);
    const match = matching(cached) ?? matching(await this.#versions(name, cached));
    if (match === undefined) return false;
    try {
      return await this.#verifyInVault(name, bytes, signature, match);
    } catch (error) {
      if (error instanceof KeyError && error.code === 'KEY_DISABLED') return false;
      throw error;
    }
  }

  async #verifyInVault(
    name: string,
    data: Uint8Array,
    signature: Uint8Array,
    version: number,
  ): Promise<boolean> {
    const answer = verifySchema.safeParse(
      await this.#call(
        `verify with "${name}" v${version}`,
        (c) =>
          c.write(`${this.transitMount}/verify/${name}`, {
            input: toBase64(data),
            signature: `vault:v${version}:${toBase64(signature)}`,
          }),
        'signing',
      ),
    );
    if (!answer.success) throw malformed('verify');
    return answer.data.data.valid;
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
    await this.#call(`rotate "${name}"`, (c) => c.write(`${this.transitMount}/keys/${name}/rotate`, {}));
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
      await this.#call(`store seal key "${name}"`, (c) =>
        c.write(this.#kvDataPath(name), {
          // cas 0: write only if absent, so two creators never replace each other's round key.
          options: { cas: 0 },
          data: {
            privateKey: toBase64(key.exportRaw()),
            publicKey: toBase64(key.publicKey),
            createdAt,
            suite: 'DHKEM(X25519,HKDF-SHA256)/HKDF-SHA256/AES-256-GCM',
          },
        }),
      );
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
      await this.#call(`delete seal key "${name}"`, (c) =>
        c.delete(`${this.kvMount}/metadata/${this.kvPrefix}/${name}`),
      );
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
    const answer = dataKeySchema.safeParse(
      await this.#call(
        `generate a data key under "${kekName}"`,
        (c) => c.write(`${this.transitMount}/datakey/plaintext/${kekName}`, { bits: 256 }),
        'kek',
      ),
    );
    if (!answer.success) throw malformed('datakey');
    const plaintext = fromBase64(answer.data.data.plaintext);
    const wrapped = parseVaultCiphertext(answer.data.data.ciphertext);
    if (!plaintext || plaintext.byteLength !== 32 || !wrapped) throw malformed('datakey');
    return { plaintext, wrapped: answer.data.data.ciphertext, kekVersion: wrapped.version };
  }

  async unwrapDataKey(kekName: string, wrapped: string): Promise<Uint8Array> {
    assertKeyName(kekName);
    if (typeof wrapped !== 'string' || !parseVaultCiphertext(wrapped)) {
      throw new KeyError(
        'BAD_FORMAT',
        'not a wrapped data key of the Vault key provider (vault:v<N>:<base64>)',
      );
    }
    const answer = decryptSchema.safeParse(
      await this.#call(
        `unwrap a data key with "${kekName}"`,
        (c) => c.write(`${this.transitMount}/decrypt/${kekName}`, { ciphertext: wrapped }),
        'kek',
        'TAMPERED',
      ),
    );
    const plaintext = answer.success ? fromBase64(answer.data.data.plaintext) : undefined;
    if (!plaintext) throw malformed('decrypt');
    return plaintext;
  }

  // ---- lifecycle -----------------------------------------------------------------------------------------------

  async health(): Promise<KeyProviderHealth> {
    if (this.#closed) return { ok: false, backend: 'vault', detail: 'closed' };
    try {
      const status = healthSchema.safeParse(await this.#call('read health', (c) => c.health()));
      if (!status.success)
        return {
          ok: false,
          backend: 'vault',
          detail: `Vault at ${this.endpoint} gave an unexpected health answer`,
        };
      if (!status.data.initialized || status.data.sealed) {
        return {
          ok: false,
          backend: 'vault',
          detail: `Vault at ${this.endpoint} is ${status.data.sealed ? 'sealed' : 'not initialised'}`,
        };
      }
      await this.#call('look up the token', (c) => c.tokenLookupSelf());
      return {
        ok: true,
        backend: 'vault',
        detail: `Vault ${status.data.version ?? ''} at ${this.endpoint}`.replace('  ', ' '),
      };
    } catch (error) {
      return {
        ok: false,
        backend: 'vault',
        detail: error instanceof KeyError ? error.message : 'Vault health check failed',
      };
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sealKeys.clear();
    this.#keyCache.clear();
    this.#types.clear();
    this.#client.stopAllRenewals?.();
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

  #kvDataPath(name: string): string {
    return `${this.kvMount}/data/${this.kvPrefix}/${name}`;
  }

  /**
   * One Vault request with errors mapped to KeyError. The underlying error is never attached: an HTTP client error
   * holds the request, whose headers carry the token and whose body can carry plaintext.
   */
  async #call<T>(
    what: string,
    request: (client: NodeVault.client) => Promise<T>,
    kind?: KeyKind,
    authFailure?: KeyErrorCode,
  ): Promise<unknown> {
    this.#assertOpen();
    try {
      return await request(this.#client);
    } catch (error) {
      throw mapVaultError(what, error, kind, authFailure);
    }
  }

  /** Transit key types by name: a type never changes, so one read per name answers every later type check. */
  readonly #types = new BoundedCache<string, string>(KEY_CACHE_ENTRIES);
  async #assertKind(name: string, kind: 'signing' | 'kek'): Promise<void> {
    const type = this.#types.get(name);
    if (type === undefined) await this.#readTransitKey(name, kind);
    else if (type !== TRANSIT_TYPE[kind]) {
      throw new KeyError(
        'KEY_TYPE_MISMATCH',
        `key "${name}" is a ${kindOf(name, type)} key, not a ${kind} key`,
      );
    }
  }

  async #readTransitKey(name: string, kind?: 'signing' | 'kek'): Promise<TransitKey> {
    assertKeyName(name);
    const answer = transitKeySchema.safeParse(
      await this.#call(`read key "${name}"`, (c) => c.read(`${this.transitMount}/keys/${name}`)),
    );
    if (!answer.success) throw malformed('keys');
    this.#types.set(name, answer.data.data.type);
    if (kind !== undefined && answer.data.data.type !== TRANSIT_TYPE[kind]) {
      throw new KeyError(
        'KEY_TYPE_MISMATCH',
        `key "${name}" is a ${kindOf(name, answer.data.data.type)} key, not a ${kind} key`,
      );
    }
    return answer.data.data;
  }

  async #createTransitKey(name: string, kind: 'signing' | 'kek'): Promise<TransitKey> {
    assertKeyName(name);
    try {
      return await this.#readTransitKey(name, kind);
    } catch (error) {
      if (!(error instanceof KeyError) || error.code !== 'UNKNOWN_KEY') throw error;
    }
    // Creating an existing transit key is a no-op in Vault, so a creation race is harmless; the type is re-checked.
    await this.#call(`create key "${name}"`, (c) =>
      c.write(`${this.transitMount}/keys/${name}`, { type: TRANSIT_TYPE[kind] }),
    );
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
    const pending = (async () => {
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
    })();
    this.#keyCache.set(name, pending);
    pending.catch(() => {
      if (this.#keyCache.peek(name) === pending) this.#keyCache.delete(name);
    });
    return pending;
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
    let pending = this.#sealKeys.get(name);
    if (!pending) {
      pending = (async () => {
        const answer = sealSecretSchema.safeParse(
          await this.#call(`read seal key "${name}"`, (c) => c.read(this.#kvDataPath(name)), 'seal'),
        );
        if (!answer.success)
          throw new KeyError(
            'KEY_TYPE_MISMATCH',
            `the secret of seal key "${name}" is not an edgefl HPKE key`,
          );
        const raw = fromBase64(answer.data.data.data.privateKey);
        if (!raw) throw new KeyError('BAD_PRIVATE_KEY', `the secret of seal key "${name}" is not base64`);
        return { key: await SealPrivateKey.fromRaw(raw), createdAt: answer.data.data.data.createdAt };
      })();
      this.#sealKeys.set(name, pending);
      // A failed read must not stick: the next call asks Vault again.
      pending.catch(() => {
        if (this.#sealKeys.peek(name) === pending) this.#sealKeys.delete(name);
      });
    }
    return pending;
  }
}

function trimMount(value: unknown, what: string): string {
  const mount = typeof value === 'string' ? value.replace(/^\/+|\/+$/g, '') : '';
  if (!MOUNT.test(mount) || mount.split('/').includes('..'))
    throw new KeyError('BAD_CONFIG', `${what} is not a valid Vault path`);
  return mount;
}

function kindOf(name: string, type: string): 'signing' | 'kek' {
  if (type === TRANSIT_TYPE.signing) return 'signing';
  if (type === TRANSIT_TYPE.kek) return 'kek';
  throw new KeyError(
    'KEY_TYPE_MISMATCH',
    `transit key "${name}" has type ${type}, which edgefl does not use`,
  );
}

/** `vault:v<N>:<base64>` → version and bytes; undefined when it is not that. */
function parseVaultCiphertext(text: string): { version: number; bytes: Uint8Array } | undefined {
  const match = /^vault:v([1-9][0-9]{0,8}):([A-Za-z0-9+/]+={0,2})$/.exec(text);
  if (!match) return undefined;
  const bytes = fromBase64(match[2]!);
  return bytes ? { version: Number(match[1]), bytes } : undefined;
}

function malformed(what: string): KeyError {
  return new KeyError('BACKEND_UNAVAILABLE', `Vault gave an answer of unexpected shape to ${what}`);
}

/** Only status, Vault's own error text (which names paths, never values) and a network error code survive. */
function mapVaultError(
  what: string,
  error: unknown,
  kind: KeyKind | undefined,
  authFailure: KeyErrorCode | undefined,
): KeyError {
  if (error instanceof KeyError) return error;
  const response = (error as { response?: { statusCode?: unknown; body?: unknown } } | null)?.response;
  const status = typeof response?.statusCode === 'number' ? response.statusCode : undefined;
  if (status === undefined) {
    const code = (error as { code?: unknown } | null)?.code;
    return new KeyError(
      'BACKEND_UNAVAILABLE',
      `cannot ${what}: Vault does not answer${typeof code === 'string' ? ` (${code})` : ''}`,
    );
  }
  const errors = (response?.body as { errors?: unknown } | undefined)?.errors;
  const text = (Array.isArray(errors) ? errors.filter((e) => typeof e === 'string').join('; ') : '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 200);
  const detail = text ? `: ${text}` : '';
  if (status === 404 || (status === 400 && /not found/i.test(text))) {
    return new KeyError('UNKNOWN_KEY', `cannot ${what}: no such ${kind === 'seal' ? 'seal key' : 'key'}`);
  }
  if (
    status === 400 &&
    /invalid key version|larger than the latest|too new|key version .*not found|version .*does not exist/i.test(
      text,
    )
  ) {
    return new KeyError('UNKNOWN_KEY', `cannot ${what}: no such key version`);
  }
  if (
    status === 400 &&
    /too old|disallowed by policy|less than the minimum|min(imum)?[_ ]decryption|has been archived/i.test(
      text,
    )
  ) {
    return new KeyError('KEY_DISABLED', `cannot ${what}: that key version is no longer allowed${detail}`);
  }
  if (status === 400 && /does not support|unsupported operation|key type/i.test(text)) {
    return new KeyError('KEY_TYPE_MISMATCH', `cannot ${what}: the key is of another type${detail}`);
  }
  if (
    status === 400 &&
    authFailure &&
    /authentication failed|invalid ciphertext|unable to decrypt|failed to decrypt|decode/i.test(text)
  ) {
    return new KeyError(
      authFailure,
      `cannot ${what}: authentication failed (altered, or wrapped by another key)`,
    );
  }
  if (status === 403)
    return new KeyError(
      'BACKEND_UNAVAILABLE',
      `cannot ${what}: permission denied (check the token's policy)`,
    );
  return new KeyError('BACKEND_UNAVAILABLE', `cannot ${what}: Vault answered HTTP ${status}${detail}`);
}
