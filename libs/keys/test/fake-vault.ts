// A small in-process stand-in for the parts of the Vault HTTP API the Vault adapter uses (transit ed25519 +
// aes256-gcm96 keys, KV v2, sys/health, token lookup-self), answering with Vault's response shapes and error texts.
// It lets the adapter's HTTP plumbing run here where no Vault exists; it does not replace the real contract run.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Ed25519SigningKey, verifyEd25519 } from '../src/index.js';

type TransitKey =
  | { type: 'ed25519'; min: number; versions: Map<number, { key: Ed25519SigningKey; created: string }> }
  | { type: 'aes256-gcm96'; min: number; versions: Map<number, { key: Buffer; created: number }> };

const TOO_OLD = 'ciphertext or signature version is disallowed by policy (too old)';

export interface FakeVault {
  endpoint: string;
  token: string;
  /** Every secret the fake holds (private keys, KV payloads), for leak checks. */
  secrets(): string[];
  /** Like `POST transit/keys/<name>/config {min_decryption_version}`. */
  setMinDecryptionVersion(name: string, version: number): void;
  /** Every request since the start (or the last clearRequests), as `<METHOD> <path without /v1/>`. */
  requests(): string[];
  clearRequests(): void;
  /** Makes the next N requests fail with HTTP 503 (an unavailable Vault). */
  failNext(count: number): void;
  close(): Promise<void>;
}

export async function startFakeVault(): Promise<FakeVault> {
  const token = `hvs.${randomBytes(18).toString('base64url')}`;
  type KvStore = Map<string, { data: Record<string, unknown>; version: number }>;
  // Mounts like a dev server: transit/ (enabled by hand there) and secret/ (KV v2); sys/mounts adds more.
  const mounts = new Map<
    string,
    { type: 'transit'; store: Map<string, TransitKey> } | { type: 'kv'; store: KvStore }
  >([
    ['transit', { type: 'transit', store: new Map() }],
    ['secret', { type: 'kv', store: new Map() }],
  ]);
  let failures = 0;
  let requests: string[] = [];

  const reply = (res: ServerResponse, status: number, body?: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body === undefined ? '' : JSON.stringify(body));
  };
  const error = (res: ServerResponse, status: number, message?: string) =>
    reply(res, status, { errors: message ? [message] : [] });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/v1\//, '');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = (chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {}) as Record<
      string,
      unknown
    >;
    requests.push(`${req.method ?? 'GET'} ${path}`);
    if (failures > 0) {
      failures--;
      return error(res, 503, 'Vault is sealed');
    }
    if (path === 'sys/health')
      return reply(res, 200, { initialized: true, sealed: false, standby: false, version: '1.17.0-fake' });
    if (req.headers['x-vault-token'] !== token) return error(res, 403, 'permission denied');
    if (path === 'auth/token/lookup-self') return reply(res, 200, { data: { policies: ['root'] } });
    let m: RegExpExecArray | null;
    if ((m = /^sys\/mounts\/(.+)$/.exec(path))) {
      if (req.method === 'DELETE') mounts.delete(m[1]!);
      else if (mounts.has(m[1]!)) return error(res, 400, `path is already in use at ${m[1]}/`);
      else if (body['type'] === 'transit') mounts.set(m[1]!, { type: 'transit', store: new Map() });
      else if (body['type'] === 'kv') mounts.set(m[1]!, { type: 'kv', store: new Map() });
      else return error(res, 400, 'unsupported mount type');
      return reply(res, 204);
    }
    const mount = [...mounts.keys()]
      .filter((p) => path.startsWith(`${p}/`))
      .sort((a, b) => b.length - a.length)[0];
    if (mount === undefined) return error(res, 404, `no handler for route "${path}"`);
    const mounted = mounts.get(mount)!;
    const rest = path.slice(mount.length + 1);
    if (mounted.type === 'transit') return handleTransit(mounted.store, `transit/${rest}`, req, res, body);
    return handleKv(mounted.store, `secret/${rest}`, url, req, res, body);
  }

  async function handleTransit(
    transit: Map<string, TransitKey>,
    path: string,
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> {
    let m: RegExpExecArray | null;
    if ((m = /^transit\/keys\/([^/]+)$/.exec(path))) {
      const name = m[1]!;
      if (req.method === 'POST') {
        if (!transit.has(name)) {
          const type = body['type'];
          if (type === 'ed25519') {
            transit.set(name, {
              type,
              min: 1,
              versions: new Map([
                [1, { key: Ed25519SigningKey.generate(), created: new Date().toISOString() }],
              ]),
            });
          } else if (type === 'aes256-gcm96') {
            transit.set(name, {
              type,
              min: 1,
              versions: new Map([[1, { key: randomBytes(32), created: Math.floor(Date.now() / 1000) }]]),
            });
          } else return error(res, 400, `unknown key type: ${String(type)}`);
        }
        return reply(res, 204);
      }
      const key = transit.get(name);
      if (!key) return error(res, 404);
      const keys: Record<string, unknown> = {};
      if (key.type === 'ed25519') {
        for (const [v, { key: k, created }] of key.versions) {
          keys[v] = {
            creation_time: created,
            name: 'ed25519',
            public_key: Buffer.from(k.publicKey).toString('base64'),
          };
        }
      } else {
        for (const [v, { created }] of key.versions) keys[v] = created;
      }
      return reply(res, 200, {
        data: {
          name,
          type: key.type,
          latest_version: key.versions.size,
          min_decryption_version: key.min,
          keys,
        },
      });
    }
    if ((m = /^transit\/keys\/([^/]+)\/rotate$/.exec(path))) {
      const key = transit.get(m[1]!);
      if (!key) return error(res, 400, 'key not found');
      const next = key.versions.size + 1;
      if (key.type === 'ed25519')
        key.versions.set(next, { key: Ed25519SigningKey.generate(), created: new Date().toISOString() });
      else key.versions.set(next, { key: randomBytes(32), created: Math.floor(Date.now() / 1000) });
      return reply(res, 200, { data: { latest_version: next } });
    }
    if ((m = /^transit\/sign\/([^/]+)$/.exec(path))) {
      const key = transit.get(m[1]!);
      if (!key) return error(res, 400, 'signing key not found');
      if (key.type !== 'ed25519') return error(res, 400, `key type ${key.type} does not support signing`);
      const v = key.versions.size;
      const signature = key.versions.get(v)!.key.sign(Buffer.from(String(body['input']), 'base64'));
      return reply(res, 200, {
        data: { signature: `vault:v${v}:${Buffer.from(signature).toString('base64')}`, key_version: v },
      });
    }
    if ((m = /^transit\/verify\/([^/]+)$/.exec(path))) {
      const key = transit.get(m[1]!);
      if (!key) return error(res, 400, 'encryption key not found');
      if (key.type !== 'ed25519')
        return error(res, 400, `key type ${key.type} does not support verification`);
      const sig = /^vault:v(\d+):(.+)$/.exec(String(body['signature']));
      if (!sig) return error(res, 400, 'invalid signature: no prefix');
      const version = key.versions.get(Number(sig[1]));
      if (!version) return error(res, 400, 'invalid signature: version is too new');
      if (Number(sig[1]) < key.min) return error(res, 400, TOO_OLD);
      const valid = verifyEd25519(
        version.key.publicKey,
        Buffer.from(String(body['input']), 'base64'),
        Buffer.from(sig[2]!, 'base64'),
      );
      return reply(res, 200, { data: { valid } });
    }
    if ((m = /^transit\/datakey\/(plaintext|wrapped)\/([^/]+)$/.exec(path))) {
      const key = transit.get(m[2]!);
      if (!key) return error(res, 400, 'encryption key not found');
      if (key.type !== 'aes256-gcm96')
        return error(res, 400, `key type ${key.type} does not support encryption`);
      const v = key.versions.size;
      const plaintext = randomBytes(Number(body['bits'] ?? 256) / 8);
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.versions.get(v)!.key, nonce);
      const ct = Buffer.concat([nonce, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      return reply(res, 200, {
        data: {
          ciphertext: `vault:v${v}:${ct.toString('base64')}`,
          key_version: v,
          ...(m[1] === 'plaintext' ? { plaintext: plaintext.toString('base64') } : {}),
        },
      });
    }
    if ((m = /^transit\/decrypt\/([^/]+)$/.exec(path))) {
      const key = transit.get(m[1]!);
      if (!key) return error(res, 400, 'encryption key not found');
      if (key.type !== 'aes256-gcm96')
        return error(res, 400, `key type ${key.type} does not support decryption`);
      const parts = /^vault:v(\d+):(.+)$/.exec(String(body['ciphertext']));
      if (!parts) return error(res, 400, 'invalid ciphertext: no prefix');
      const version = key.versions.get(Number(parts[1]));
      if (!version) return error(res, 400, 'invalid ciphertext: version is too new');
      if (Number(parts[1]) < key.min) return error(res, 400, TOO_OLD);
      const raw = Buffer.from(parts[2]!, 'base64');
      try {
        const decipher = createDecipheriv('aes-256-gcm', version.key, raw.subarray(0, 12));
        decipher.setAuthTag(raw.subarray(raw.length - 16));
        const plaintext = Buffer.concat([
          decipher.update(raw.subarray(12, raw.length - 16)),
          decipher.final(),
        ]);
        return reply(res, 200, { data: { plaintext: plaintext.toString('base64') } });
      } catch {
        return error(res, 400, 'invalid ciphertext: unable to decrypt');
      }
    }
    return error(res, 404);
  }

  async function handleKv(
    kv: KvStore,
    path: string,
    url: URL,
    req: IncomingMessage,
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> {
    let m: RegExpExecArray | null;
    if (
      (m = /^secret\/metadata\/(.+?)\/?$/.exec(path)) &&
      req.method === 'GET' &&
      url.searchParams.get('list') === 'true'
    ) {
      const prefix = `${m[1]}/`;
      const keys = [...kv.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
      return keys.length ? reply(res, 200, { data: { keys } }) : error(res, 404);
    }
    if ((m = /^secret\/data\/(.+)$/.exec(path))) {
      const entry = kv.get(m[1]!);
      if (req.method === 'GET') {
        return entry
          ? reply(res, 200, { data: { data: entry.data, metadata: { version: entry.version } } })
          : error(res, 404);
      }
      const cas = (body['options'] as { cas?: number } | undefined)?.cas;
      if (cas !== undefined && cas !== (entry?.version ?? 0)) {
        return error(res, 400, 'check-and-set parameter did not match the current version');
      }
      kv.set(m[1]!, { data: body['data'] as Record<string, unknown>, version: (entry?.version ?? 0) + 1 });
      return reply(res, 200, { data: { version: (entry?.version ?? 0) + 1 } });
    }
    if ((m = /^secret\/metadata\/(.+)$/.exec(path)) && req.method === 'DELETE') {
      kv.delete(m[1]!);
      return reply(res, 204);
    }
    return error(res, 404);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => error(res, 500, 'internal error'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake Vault has no port');
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    token,
    secrets() {
      const out: string[] = [token];
      for (const mounted of mounts.values()) {
        if (mounted.type === 'transit') {
          for (const key of mounted.store.values()) {
            for (const { key: k } of key.versions.values()) {
              out.push(
                k instanceof Ed25519SigningKey
                  ? Buffer.from(k.exportPkcs8()).toString('base64')
                  : k.toString('base64'),
              );
            }
          }
        } else {
          for (const { data } of mounted.store.values())
            if (typeof data['privateKey'] === 'string') out.push(data['privateKey']);
        }
      }
      return out;
    },
    setMinDecryptionVersion(name, version) {
      const mounted = mounts.get('transit');
      const key = mounted?.type === 'transit' ? mounted.store.get(name) : undefined;
      if (key) key.min = version;
    },
    requests: () => [...requests],
    clearRequests() {
      requests = [];
    },
    failNext(count) {
      failures = count;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
