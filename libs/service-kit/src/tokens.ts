/** Injection tokens of the service kit. */
export const SERVICE_CONFIG = Symbol.for('edgefl.service-config');
export const LOGGER = Symbol.for('edgefl.logger');
export const METRICS_REGISTRY = Symbol.for('edgefl.metrics-registry');
