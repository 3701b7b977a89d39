import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ed25519KeyId, ManifestError, verifyManifest, type ReleaseManifest } from '@edgefl/model';
import { z } from 'zod';
import type { ReleaseKey } from '../registry-client.js';
import { replaceAtomically } from './fs-atomic.js';

const TrustFile = z
  .object({
    formatVersion: z.literal(1),
    keys: z.record(z.string().regex(/^[0-9a-f]{32}$/), z.string().min(1).max(64)),
  })
  .strict();

export interface VerifyOptions {
  now: Date;
  installedVersion?: number;
  modelId?: string;
}

/**
 * The release keys a device trusts, pinned at provisioning (TUF's root of trust, kept in `trust.json`).
 *
 * Rotation, as the manifest format allows (its envelope holds several signatures but no key material): a key the
 * device does not know is learnt only from a manifest that a pinned key also signed — the registry co-signs with the
 * old and the new key during a rotation — and only if the new key, fetched from `GET /v1/release-keys`, has the key
 * id the signature names and its signature verifies. A manifest signed only by unknown keys is refused
 * ('unknown-key'), whatever the release-keys endpoint says.
 */
export class TrustStore {
  readonly #path: string;
  #keys = new Map<string, Uint8Array>();

  constructor(path: string) {
    this.#path = path;
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    if (existsSync(path)) {
      const parsed = TrustFile.safeParse(JSON.parse(readFileSync(path, 'utf8')));
      if (!parsed.success) throw new ManifestError('unknown-key', `trust file ${path} is malformed`);
      for (const [id, b64] of Object.entries(parsed.data.keys))
        this.#keys.set(id, Buffer.from(b64, 'base64'));
    }
  }

  get pinned(): boolean {
    return this.#keys.size > 0;
  }

  get keyIds(): string[] {
    return [...this.#keys.keys()];
  }

  /** Pins keys (provisioning): each key id must be the key's own id. */
  pin(keys: readonly ReleaseKey[]): void {
    for (const k of keys) {
      const raw = Buffer.from(k.publicKey, 'base64');
      if (raw.byteLength !== 32 || ed25519KeyId(raw) !== k.keyId)
        throw new ManifestError('unknown-key', `release key ${k.keyId} does not match its key id`);
      this.#keys.set(k.keyId, raw);
    }
    this.#save();
  }

  #save(): void {
    const keys = Object.fromEntries(
      [...this.#keys].map(([id, raw]) => [id, Buffer.from(raw).toString('base64')]),
    );
    replaceAtomically(this.#path, Buffer.from(JSON.stringify({ formatVersion: 1, keys })));
  }

  /**
   * Verifies a signed manifest envelope with the pinned keys (libs/model's verifyManifest: signature, expiry,
   * rollback, model id). New keys are learnt per the rotation rule above, with `fetchKeys` asked only when a
   * signature names a key id that is not pinned.
   */
  async verify(
    envelope: unknown,
    options: VerifyOptions,
    fetchKeys: () => Promise<ReleaseKey[]>,
  ): Promise<ReleaseManifest> {
    const manifest = verifyManifest(envelope, { trustedKeys: this.#keys, ...options });
    const signatures = (envelope as { signatures: Array<{ keyId: string }> }).signatures;
    const unknown = signatures.map((s) => s.keyId).filter((id) => !this.#keys.has(id));
    if (unknown.length > 0) {
      let offered: ReleaseKey[];
      try {
        offered = await fetchKeys();
      } catch {
        offered = [];
      }
      const learnt: ReleaseKey[] = [];
      for (const id of unknown) {
        const key = offered.find((k) => k.keyId === id);
        if (!key) continue;
        const raw = Buffer.from(key.publicKey, 'base64');
        if (raw.byteLength !== 32 || ed25519KeyId(raw) !== id) continue;
        try {
          // the new key's own signature over the same manifest must verify (threshold 1 with that key alone)
          verifyManifest(envelope, { trustedKeys: new Map([[id, raw]]), now: options.now });
          learnt.push(key);
        } catch {
          continue;
        }
      }
      if (learnt.length > 0) this.pin(learnt);
    }
    return manifest;
  }
}
