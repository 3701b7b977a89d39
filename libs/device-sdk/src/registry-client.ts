import { DeviceError } from './errors.js';
import type { DeviceIdentity } from './identity.js';

export type Fetch = typeof fetch;

/** What `GET /v1/devices/{id}/manifest` answers (services/registry's DeviceManifest). Untrusted until verified. */
export interface DeviceManifestAnswer {
  modelId: string;
  version: number;
  reason: string;
  releaseId: string | null;
  fullDownload: boolean;
  restores: { version: number; sha256: string } | null;
  /** The signed libs/model manifest envelope ({ signed, signatures }). */
  manifest: unknown;
  artifact: { url: string; sha256: string; sizeBytes: number };
  deltas: Array<{ fromVersion: number; url: string; sha256: string; sizeBytes: number }>;
}

/** `GET /v1/models/{model}/versions/{to}/delta?from=`: the cheapest path, as the registry plans it. */
export interface DeltaPlanAnswer {
  kind: 'none' | 'full' | 'direct' | 'chain';
  totalBytes: number;
  fullBytes: number;
  artifact: { url: string; sha256: string; sizeBytes: number };
  steps: Array<{ fromVersion: number; toVersion: number; sizeBytes: number; sha256: string; url: string }>;
}

export interface ReleaseKey {
  keyId: string;
  version: number;
  /** Raw Ed25519 public key, base64. */
  publicKey: string;
  createdAt: string;
}

export interface RegistryClientOptions {
  baseUrl: string;
  identity: DeviceIdentity;
  fetch?: Fetch;
  now?: () => number;
  /** Per-request timeout for JSON calls (downloads have their own stall and rate limits). Default 15 s. */
  requestTimeoutMs?: number;
}

/** HTTP status and problem+json detail of a failed registry call. */
export class RegistryHttpError extends DeviceError {
  readonly status: number;
  constructor(status: number, message: string) {
    super('registry', message);
    this.status = status;
  }
}

const MAX_JSON_BYTES = 4 << 20;

/**
 * The registry's device-facing HTTP API. Every call carries the device token (`Authorization: Bearer`), obtained
 * by exchanging a signed assertion (`POST /v1/devices/{id}/token`) and renewed a minute before it expires or when
 * the registry answers 401, so it works with REGISTRY_DEVICE_AUTH=required.
 */
/** undici's codes for a connection that closed under a request (a stale keep-alive socket). */
const STALE_SOCKET = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

export class RegistryClient {
  readonly baseUrl: string;
  readonly #identity: DeviceIdentity;
  readonly #fetch: Fetch;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  #token: { value: string; expiresAt: number } | null = null;
  #pending: Promise<string> | null = null;

  constructor(options: RegistryClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#identity = options.identity;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.requestTimeoutMs ?? 15_000;
  }

  get deviceId(): string {
    return this.#identity.deviceId;
  }

  /** A valid device token (the MQTT password too), renewed when less than a minute is left. */
  async token(force = false): Promise<string> {
    if (!force && this.#token && this.#token.expiresAt - 60_000 > this.#now()) return this.#token.value;
    this.#pending ??= (async () => {
      try {
        const body = await this.#json<{ token: string; expiresAt: number }>(
          'POST',
          `/v1/devices/${encodeURIComponent(this.deviceId)}/token`,
          { assertion: this.#identity.assertion(this.#now()) },
          false,
        );
        if (typeof body.token !== 'string' || typeof body.expiresAt !== 'number')
          throw new DeviceError('registry', 'the token answer lacks token or expiresAt');
        this.#token = { value: body.token, expiresAt: body.expiresAt };
        return body.token;
      } finally {
        this.#pending = null;
      }
    })();
    return this.#pending;
  }

  async #json<T>(method: string, path: string, body: unknown, auth: boolean): Promise<T> {
    const res = await this.request(method, path, { auth, json: body });
    const text = await readLimited(res, MAX_JSON_BYTES);
    if (!res.ok) throw errorOf(res.status, method, path, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new DeviceError('registry', `${method} ${path}: the answer is not JSON`);
    }
  }

  /**
   * A raw request with the device token (retried once with a fresh token on 401). `signal` aborts it; JSON calls
   * also time out after requestTimeoutMs.
   */
  async request(
    method: string,
    path: string,
    options: {
      auth?: boolean;
      json?: unknown;
      headers?: Record<string, string>;
      signal?: AbortSignal;
    } = {},
  ): Promise<Response> {
    const url = path.startsWith('http://') || path.startsWith('https://') ? path : `${this.baseUrl}${path}`;
    if (!url.startsWith(`${this.baseUrl}/`))
      throw new DeviceError(
        'registry',
        'refusing a URL outside the registry the device was provisioned with',
      );
    const send = async (fresh: boolean, retried = false): Promise<Response> => {
      const headers: Record<string, string> = {
        accept: 'application/json, application/octet-stream',
        ...options.headers,
      };
      if (options.auth !== false) headers['authorization'] = `Bearer ${await this.token(fresh)}`;
      if (options.json !== undefined) headers['content-type'] = 'application/json';
      const signal = options.signal ?? AbortSignal.timeout(this.#timeoutMs);
      try {
        return await this.#fetch(url, {
          method,
          headers,
          signal,
          ...(options.json !== undefined ? { body: JSON.stringify(options.json) } : {}),
        });
      } catch (error) {
        if (signal.aborted && options.signal) throw error;
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        // a pooled keep-alive connection the server closed meanwhile (its idle timeout passed while this process
        // was busy) fails before the request was sent: sent once more, on a new connection
        if (!retried && !signal.aborted && STALE_SOCKET.has(cause?.code ?? '')) return send(fresh, true);
        const detail = cause?.message ? ` (${cause.message})` : '';
        throw new DeviceError('registry', `${method} ${path}: ${(error as Error).message}${detail}`);
      }
    };
    let res = await send(false);
    if (res.status === 401 && options.auth !== false) {
      await res.body?.cancel();
      res = await send(true);
    }
    return res;
  }

  /** The version this device should run now (404 → null: nothing is released for it). */
  async manifest(query: { model?: string; current?: number } = {}): Promise<DeviceManifestAnswer | null> {
    const params = new URLSearchParams();
    if (query.model) params.set('model', query.model);
    if (query.current !== undefined) params.set('current', String(query.current));
    const qs = params.size > 0 ? `?${params}` : '';
    try {
      return await this.#json<DeviceManifestAnswer>(
        'GET',
        `/v1/devices/${encodeURIComponent(this.deviceId)}/manifest${qs}`,
        undefined,
        true,
      );
    } catch (error) {
      if (error instanceof RegistryHttpError && error.status === 404) return null;
      throw error;
    }
  }

  deltaPlan(modelId: string, to: number, from: number): Promise<DeltaPlanAnswer> {
    return this.#json(
      'GET',
      `/v1/models/${encodeURIComponent(modelId)}/versions/${to}/delta?from=${from}`,
      undefined,
      true,
    );
  }

  releaseKeys(): Promise<ReleaseKey[]> {
    return this.#json('GET', '/v1/release-keys', undefined, false);
  }
}

function errorOf(status: number, method: string, path: string, text: string): RegistryHttpError {
  let detail: string;
  try {
    const body = JSON.parse(text) as { detail?: unknown; title?: unknown };
    detail = typeof body.detail === 'string' ? body.detail : typeof body.title === 'string' ? body.title : '';
  } catch {
    detail = '';
  }
  return new RegistryHttpError(
    status,
    `${method} ${path}: HTTP ${status}${detail ? ` (${detail.slice(0, 200)})` : ''}`,
  );
}

/** Reads a response body as text, refusing more than `max` bytes. */
export async function readLimited(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new DeviceError('registry', `answer larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
