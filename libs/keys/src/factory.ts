import type { KeyProviderConfig } from './config.js';
import { KeyError } from './errors.js';
import { LocalKeyProvider } from './local/local-key-provider.js';
import type { KeyProvider } from './port.js';

/**
 * Opens the configured KeyProvider. The Vault adapter is imported only when asked for, so local and device users
 * never load node-vault.
 */
export async function createKeyProvider(config: KeyProviderConfig): Promise<KeyProvider> {
  switch (config?.kind) {
    case 'local':
      return LocalKeyProvider.open({ path: config.path });
    case 'vault': {
      const { VaultKeyProvider } = await import('./vault/vault-key-provider.js');
      const { kind: _kind, ...options } = config;
      return VaultKeyProvider.connect(options);
    }
    default:
      throw new KeyError(
        'BAD_CONFIG',
        `unknown key provider kind ${JSON.stringify((config as { kind?: unknown } | undefined)?.kind)} (expected "local" or "vault")`,
      );
  }
}
