// @edgefl/keys/vault — the Vault adapter; the only module of @edgefl/keys that imports node-vault.
export { VaultKeyProvider, type VaultKeyProviderOptions } from './vault-key-provider.js';
