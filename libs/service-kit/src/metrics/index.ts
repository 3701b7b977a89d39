export * from './metrics.js';
export * from './metrics.controller.js';
export * from './http-metrics.middleware.js';
