/** The telemetry's own injection tokens. */
export const TELEMETRY_CONFIG = Symbol.for('edgefl.telemetry.config');
export const TELEMETRY_STORE = Symbol.for('edgefl.telemetry.store');
