export * from './readiness.js';
export * from './health.controller.js';
