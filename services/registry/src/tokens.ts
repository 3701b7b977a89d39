/** The registry's own injection tokens. */
export const REGISTRY_CONFIG = Symbol.for('edgefl.registry.config');
export const REGISTRY_STORE = Symbol.for('edgefl.registry.store');
export const BLOB_STORE = Symbol.for('edgefl.registry.blob-store');
