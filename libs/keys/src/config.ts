/** Options of the Vault adapter (declared here so that configuring it never loads node-vault). */
export interface VaultKeyProviderOptions {
  /** e.g. `https://vault.internal:8200`. */
  endpoint: string;
  token: string;
  /** Mount path of the transit engine. Default `transit`. */
  transitMount?: string;
  /** Mount path of the KV version 2 engine holding HPKE private keys. Default `secret`. */
  kvMount?: string;
  /** Path prefix under the KV mount. Default `edgefl/hpke`. */
  kvPrefix?: string;
  /** Vault Enterprise namespace, if any. */
  namespace?: string;
  /** Per-request timeout. Default 10 000 ms. */
  requestTimeoutMs?: number;
}

/** What `createKeyProvider` takes; `EDGEFL_KEYS=local|vault` selects the kind. */
export type KeyProviderConfig =
  { kind: 'local'; path: string } | ({ kind: 'vault' } & VaultKeyProviderOptions);
