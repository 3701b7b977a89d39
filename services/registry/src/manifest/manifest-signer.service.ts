import { Inject, Injectable } from '@nestjs/common';
import type { KeyProvider } from '@edgefl/keys';
import {
  MANIFEST_SPEC_VERSION,
  MANIFEST_TYPE,
  signManifest,
  type ReleaseManifest,
  type SignedManifest,
} from '@edgefl/model';
import { CLOCK, type Clock, KEY_PROVIDER } from '@edgefl/service-kit';
import type { RegistryConfig } from '../config.js';
import { RELEASE_SIGNING_KEY, releaseSigner } from '../models/signing.js';
import type { Delta, ModelVersion, Targeting } from '../storage/records.js';
import { REGISTRY_CONFIG } from '../tokens.js';

export interface ManifestInput {
  version: ModelVersion;
  /** Deltas offered to this version (none: the device downloads the full artifact). */
  deltas: readonly Delta[];
  targeting: Targeting | null;
}

/**
 * Signs libs/model release manifests (TUF-style: version, expiry, artifact size + sha256 + chunk Merkle root,
 * provenance, targeting, deltas) with the registry's release key, and caches them until half their lifetime is
 * spent: the hot manifest path signs nothing.
 */
@Injectable()
export class ManifestSigner {
  private readonly cache = new Map<string, { signed: SignedManifest; renewAt: number }>();
  private readonly sign;

  constructor(
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
  ) {
    this.sign = releaseSigner(keys);
  }

  /** The trusted keys devices pin: key id → raw public key (base64), every usable version. */
  async trustedKeys(): Promise<
    Array<{ keyId: string; version: number; publicKey: string; createdAt: string }>
  > {
    await this.keys.createSigningKey(RELEASE_SIGNING_KEY);
    return (await this.keys.publicKeys(RELEASE_SIGNING_KEY)).map((k) => ({
      keyId: k.keyId,
      version: k.version,
      publicKey: Buffer.from(k.publicKey).toString('base64'),
      createdAt: k.createdAt,
    }));
  }

  invalidate(modelId: string): void {
    for (const key of this.cache.keys()) if (key.startsWith(`${modelId}|`)) this.cache.delete(key);
  }

  async signed(input: ManifestInput): Promise<SignedManifest> {
    const v = input.version;
    const t = input.targeting;
    const key = `${v.modelId}|${v.version}|${v.status}|${input.deltas.map((d) => d.fromVersion).join(',')}|${t ? JSON.stringify(t) : ''}`;
    const now = this.clock.now();
    const hit = this.cache.get(key);
    if (hit && hit.renewAt > now) return hit.signed;
    const ttl = this.config.own.manifestTtlMs;
    const provenance = v.provenance as {
      participants?: unknown;
      epsilonSpent?: unknown;
      deltaSpent?: unknown;
    };
    const manifest: ReleaseManifest = {
      _type: MANIFEST_TYPE,
      specVersion: MANIFEST_SPEC_VERSION,
      modelId: v.modelId,
      version: v.version,
      label: v.label,
      created: new Date(now).toISOString(),
      expires: new Date(now + ttl).toISOString(),
      parentVersion: v.parentVersion,
      artifact: {
        format: v.format,
        size: v.sizeBytes,
        sha256: v.sha256,
        chunkSize: v.chunkSize,
        merkleRoot: v.merkleRoot,
      },
      provenance: {
        roundId: v.roundId,
        participants: Array.isArray(provenance.participants) ? provenance.participants.length : 0,
        dp:
          typeof provenance.epsilonSpent === 'number' && typeof provenance.deltaSpent === 'number'
            ? { epsilon: provenance.epsilonSpent, delta: provenance.deltaSpent }
            : null,
        metrics: Object.fromEntries(Object.entries(v.metrics).filter(([, x]) => Number.isFinite(x))),
      },
      targeting: { tenants: [v.tenantId], cohorts: t?.groups ?? [] },
      hardwareClasses: t?.hardwareClasses ?? [],
      deltas: input.deltas.map((d) => ({
        fromVersion: d.fromVersion,
        size: d.sizeBytes,
        sha256: d.sha256,
        mode: d.mode,
      })),
    };
    const signed = await signManifest(manifest, this.sign);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { signed, renewAt: now + ttl / 2 });
    return signed;
  }
}
