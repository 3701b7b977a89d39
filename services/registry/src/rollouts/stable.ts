import type { ModelVersion, Release } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';

/** What a roll-forward version restores (from its provenance), or null for an ordinary version. */
export interface Restores {
  /** The version whose artifact it carries. */
  version: number;
  /** That artifact's sha256 (equal to the roll-forward's own). */
  sha256: string;
  /** The bad version it replaces. */
  rollbackOf: number;
  /** The release that was rolled back. */
  releaseId: string | null;
}

export function restoresOf(version: ModelVersion): Restores | null {
  const p = version.provenance;
  const restored = p['restoredVersion'];
  const sha256 = p['restoredSha256'];
  const rollbackOf = p['rollbackOf'];
  if (typeof restored !== 'number' || typeof sha256 !== 'string' || typeof rollbackOf !== 'number')
    return null;
  const releaseId = p['releaseId'];
  return {
    version: restored,
    sha256,
    rollbackOf,
    releaseId: typeof releaseId === 'string' ? releaseId : null,
  };
}

/**
 * The release whose targeting governs a stable version: the completed release of that version or, for a
 * roll-forward, the one of the version it restores (followed through repeated rollbacks). Null when none.
 */
export async function stableReleaseOf(
  store: RegistryStore,
  modelId: string,
  stableVersion: number,
  completed?: readonly Release[],
): Promise<Release | null> {
  const releases = completed ?? (await store.releases.listReleases({ modelId, states: ['COMPLETED'] }));
  let version = stableVersion;
  for (let hop = 0; hop < 16; hop++) {
    const release = [...releases].reverse().find((r) => r.version === version);
    if (release) return release;
    const record = await store.catalog.getVersion(modelId, version);
    const restores = record ? restoresOf(record) : null;
    if (!restores || restores.version >= version) return null;
    version = restores.version;
  }
  return null;
}
