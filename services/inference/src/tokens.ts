/** The inference's own injection tokens. */
export const INFERENCE_CONFIG = Symbol.for('edgefl.inference.config');
