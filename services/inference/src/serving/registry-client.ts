import { ArtifactVerifier, ed25519KeyId, type ReleaseManifest } from '@edgefl/model';

/** Why fetching from the registry failed: the metric label of a failed load. */
export class RegistryFetchError extends Error {
  constructor(
    readonly reason: 'unreachable' | 'http' | 'too-large' | 'length-mismatch' | 'hash-mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'RegistryFetchError';
  }
}

const TIMEOUT_MS = 30_000;

/**
 * What the inference tier reads from the registry over HTTP (services meet on the bus and HTTP, never by import):
 * the release-signing keys and artifacts, with the registry's management token.
 */
export class RegistryClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string | undefined,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  #headers(): Record<string, string> {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** The release-signing public keys the registry publishes: key id → raw Ed25519 key. */
  async releaseKeys(): Promise<Map<string, Uint8Array>> {
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}/v1/release-keys`, {
        headers: this.#headers(),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new RegistryFetchError('unreachable', `registry unreachable: ${(error as Error).message}`);
    }
    if (!res.ok) throw new RegistryFetchError('http', `GET /v1/release-keys answered ${res.status}`);
    const body = (await res.json()) as unknown;
    const keys = new Map<string, Uint8Array>();
    if (!Array.isArray(body)) throw new RegistryFetchError('http', 'GET /v1/release-keys: not a list');
    for (const entry of body as Array<{ publicKey?: unknown }>) {
      if (typeof entry?.publicKey !== 'string') continue;
      const raw = new Uint8Array(Buffer.from(entry.publicKey, 'base64'));
      if (raw.byteLength === 32) keys.set(ed25519KeyId(raw), raw);
    }
    return keys;
  }

  /**
   * Downloads a version's artifact and checks it against the verified manifest while it streams: refused as soon as
   * it grows past the declared size, and at the end unless length and sha256 match.
   */
  async artifact(manifest: ReleaseManifest): Promise<Uint8Array> {
    const path = `/v1/models/${encodeURIComponent(manifest.modelId)}/versions/${manifest.version}/artifact`;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}${path}`, {
        headers: this.#headers(),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      throw new RegistryFetchError('unreachable', `registry unreachable: ${(error as Error).message}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new RegistryFetchError('http', `GET ${path} answered ${res.status}`);
    }
    const verifier = new ArtifactVerifier(manifest);
    const chunks: Uint8Array[] = [];
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        verifier.update(value);
        chunks.push(value);
      }
      verifier.finish();
    } catch (error) {
      await reader.cancel().catch(() => undefined);
      const reason = (error as { reason?: string }).reason;
      if (reason === 'too-large' || reason === 'length-mismatch' || reason === 'hash-mismatch')
        throw new RegistryFetchError(reason, (error as Error).message);
      throw new RegistryFetchError('unreachable', `download of ${path} broke: ${(error as Error).message}`);
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
}
