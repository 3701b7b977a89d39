// @edgefl/keys — primitives usable on devices (node:crypto + @hpke/core only) and the KeyProvider port.
// This entry must never import node-vault: the Vault adapter lives in '@edgefl/keys/vault' and is loaded lazily.
export { KeyError, isKeyError, type KeyErrorCode } from './errors.js';
export { type BytesLike } from './bytes.js';
export {
  ED25519_PUBLIC_KEY_BYTES,
  ED25519_SIGNATURE_BYTES,
  Ed25519SigningKey,
  ed25519PublicKeyToPem,
  ed25519PublicKeyToSpki,
  ed25519RawPublicKey,
  importEd25519PublicKey,
  keyIdOf,
  signEd25519,
  verifyEd25519,
  type Ed25519PublicKeyInput,
} from './ed25519.js';
export {
  HPKE_SUITE,
  SEALED_FORMAT_V1,
  SealPrivateKey,
  X25519_KEY_BYTES,
  decodeSealed,
  encodeSealed,
  open,
  seal,
  type SealOptions,
  type Sealed,
} from './hpke.js';
export { DATA_KEY_BYTES, decryptWithDataKey, encryptWithDataKey, randomDataKey } from './envelope.js';
export {
  assertKeyName,
  type DataKey,
  type KeyKind,
  type KeyProvider,
  type KeyProviderHealth,
  type KeyVersionInfo,
  type SealPublicKey,
  type SignatureResult,
  type SigningPublicKey,
} from './port.js';
export { LocalKeyProvider, type LocalKeyProviderOptions } from './local/local-key-provider.js';
export { KEYRING_FORMAT, KEYRING_FORMAT_VERSION } from './local/keyring-file.js';
export { createKeyProvider } from './factory.js';
export type { KeyProviderConfig, VaultKeyProviderOptions } from './config.js';
