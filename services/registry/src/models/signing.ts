import type { KeyProvider } from '@edgefl/keys';
import type { ManifestSigner } from '@edgefl/model';

/** Name of the registry's release-signing key (manifests, artifact statements) at the KeyProvider. */
export const RELEASE_SIGNING_KEY = 'registry-releases';

/** libs/model's ManifestSigner over the KeyProvider: the private key never leaves the key backend. */
export function releaseSigner(keys: KeyProvider): ManifestSigner {
  return async (bytes) => {
    const { keyId, signature } = await keys.sign(RELEASE_SIGNING_KEY, bytes);
    return { keyId, signature };
  };
}
