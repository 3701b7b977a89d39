// The part of Vault's HTTP API the Vault key provider uses, over node-vault: transit keys (read, create, rotate,
// sign, verify, data keys, decrypt), the KV v2 secrets holding HPKE recipient keys, sys/health and the token
// look-up. Each method knows its path and request body, checks the answer's shape (Vault is an input boundary
// too) and maps failures to KeyError (vault-errors.ts). What the answers mean for keys is the provider's business.
import NodeVault from 'node-vault';
import { z } from 'zod';
import { fromBase64, toBase64 } from '../bytes.js';
import type { VaultKeyProviderOptions } from '../config.js';
import { KeyError, type KeyErrorCode } from '../errors.js';
import type { KeyKind } from '../port.js';
import { malformed, mapVaultError } from './vault-errors.js';

const MOUNT = /^[A-Za-z0-9][A-Za-z0-9_.-]*(\/[A-Za-z0-9][A-Za-z0-9_.-]*)*$/;

// ---- response shapes (every answer is checked before use) ------------------------------------------------------
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

/** A transit key as `GET <transit>/keys/<name>` describes it. */
export type TransitKey = z.infer<typeof transitKeySchema>['data'];
/** The KV v2 secret of an HPKE recipient key (base64 fields). */
export type SealSecret = z.infer<typeof sealSecretSchema>['data']['data'];
export type VaultHealth = z.infer<typeof healthSchema>;

/** Where the client talks to, validated. */
export interface VaultLocation {
  endpoint: string;
  transitMount: string;
  kvMount: string;
  kvPrefix: string;
}

export class VaultClient {
  readonly location: VaultLocation;
  readonly #client: NodeVault.client;
  #closed = false;

  private constructor(location: VaultLocation, client: NodeVault.client) {
    this.location = location;
    this.#client = client;
  }

  /** Validates the options (BAD_CONFIG) and builds the client; contacts Vault only on the first request. */
  static create(options: VaultKeyProviderOptions): VaultClient {
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
    return new VaultClient({ endpoint, transitMount, kvMount, kvPrefix }, client);
  }

  /** Later requests fail with CLOSED; token renewals stop. */
  close(): void {
    this.#closed = true;
    this.#client.stopAllRenewals?.();
  }

  // ---- transit ---------------------------------------------------------------------------------------------------

  async readTransitKey(name: string): Promise<TransitKey> {
    const answer = transitKeySchema.safeParse(
      await this.#call(`read key "${name}"`, (c) => c.read(`${this.#transit}/keys/${name}`)),
    );
    if (!answer.success) throw malformed('keys');
    return answer.data.data;
  }

  /** Creating an existing transit key is a no-op in Vault. */
  async createTransitKey(name: string, type: string): Promise<void> {
    await this.#call(`create key "${name}"`, (c) => c.write(`${this.#transit}/keys/${name}`, { type }));
  }

  async rotateTransitKey(name: string): Promise<void> {
    await this.#call(`rotate "${name}"`, (c) => c.write(`${this.#transit}/keys/${name}/rotate`, {}));
  }

  /** Vault's signature text (`vault:v<N>:<base64>`) over `input` with the latest version. */
  async sign(name: string, input: Uint8Array): Promise<string> {
    const answer = signSchema.safeParse(
      await this.#call(
        `sign with "${name}"`,
        (c) => c.write(`${this.#transit}/sign/${name}`, { input: toBase64(input) }),
        'signing',
      ),
    );
    if (!answer.success) throw malformed('sign');
    return answer.data.data.signature;
  }

  /** Vault's verdict on a raw signature by one version (Vault enforces min_decryption_version). */
  async verify(name: string, input: Uint8Array, signature: Uint8Array, version: number): Promise<boolean> {
    const answer = verifySchema.safeParse(
      await this.#call(
        `verify with "${name}" v${version}`,
        (c) =>
          c.write(`${this.#transit}/verify/${name}`, {
            input: toBase64(input),
            signature: `vault:v${version}:${toBase64(signature)}`,
          }),
        'signing',
      ),
    );
    if (!answer.success) throw malformed('verify');
    return answer.data.data.valid;
  }

  /** A fresh 256-bit data key: base64 plaintext and Vault's ciphertext of it under the KEK. */
  async generateDataKey(kekName: string): Promise<{ plaintext: string; ciphertext: string }> {
    const answer = dataKeySchema.safeParse(
      await this.#call(
        `generate a data key under "${kekName}"`,
        (c) => c.write(`${this.#transit}/datakey/plaintext/${kekName}`, { bits: 256 }),
        'kek',
      ),
    );
    if (!answer.success) throw malformed('datakey');
    return answer.data.data;
  }

  /** The base64 plaintext of a Vault ciphertext; an authentication failure is TAMPERED. */
  async decrypt(kekName: string, ciphertext: string): Promise<string> {
    const answer = decryptSchema.safeParse(
      await this.#call(
        `unwrap a data key with "${kekName}"`,
        (c) => c.write(`${this.#transit}/decrypt/${kekName}`, { ciphertext }),
        'kek',
        'TAMPERED',
      ),
    );
    if (!answer.success) throw malformed('decrypt');
    return answer.data.data.plaintext;
  }

  // ---- KV v2: HPKE recipient keys ------------------------------------------------------------------------------

  /** The secret of a seal key; undefined when the secret is not of that shape. Absent → UNKNOWN_KEY. */
  async readSealSecret(name: string): Promise<SealSecret | undefined> {
    const answer = sealSecretSchema.safeParse(
      await this.#call(`read seal key "${name}"`, (c) => c.read(this.#kvDataPath(name)), 'seal'),
    );
    return answer.success ? answer.data.data.data : undefined;
  }

  /**
   * Writes a seal key's secret only if absent (check-and-set 0), so two creators never replace each other's key;
   * the loser gets BACKEND_UNAVAILABLE with Vault's "check-and-set" text.
   */
  async createSealSecret(name: string, data: SealSecret & { suite: string }): Promise<void> {
    await this.#call(`store seal key "${name}"`, (c) =>
      c.write(this.#kvDataPath(name), { options: { cas: 0 }, data }),
    );
  }

  /** Destroys every version of a seal key's secret. */
  async deleteSealSecret(name: string): Promise<void> {
    await this.#call(`delete seal key "${name}"`, (c) =>
      c.delete(`${this.location.kvMount}/metadata/${this.location.kvPrefix}/${name}`),
    );
  }

  // ---- sys -------------------------------------------------------------------------------------------------------

  /** sys/health; undefined when the answer has an unexpected shape. */
  async health(): Promise<VaultHealth | undefined> {
    const status = healthSchema.safeParse(await this.#call('read health', (c) => c.health()));
    return status.success ? status.data : undefined;
  }

  /** Succeeds when the token works. */
  async lookUpToken(): Promise<void> {
    await this.#call('look up the token', (c) => c.tokenLookupSelf());
  }

  // ---- plumbing --------------------------------------------------------------------------------------------------

  get #transit(): string {
    return this.location.transitMount;
  }

  #kvDataPath(name: string): string {
    return `${this.location.kvMount}/data/${this.location.kvPrefix}/${name}`;
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
    if (this.#closed) throw new KeyError('CLOSED', 'the key provider is closed');
    try {
      return await request(this.#client);
    } catch (error) {
      throw mapVaultError(what, error, kind, authFailure);
    }
  }
}

export /** `vault:v<N>:<base64>` → version and bytes; undefined when it is not that. */
function parseVaultCiphertext(text: string): { version: number; bytes: Uint8Array } | undefined {
  const match = /^vault:v([1-9][0-9]{0,8}):([A-Za-z0-9+/]+={0,2})$/.exec(text);
  if (!match) return undefined;
  const bytes = fromBase64(match[2]!);
  return bytes ? { version: Number(match[1]), bytes } : undefined;
}

function trimMount(value: unknown, what: string): string {
  const mount = typeof value === 'string' ? value.replace(/^\/+|\/+$/g, '') : '';
  if (!MOUNT.test(mount) || mount.split('/').includes('..'))
    throw new KeyError('BAD_CONFIG', `${what} is not a valid Vault path`);
  return mount;
}
