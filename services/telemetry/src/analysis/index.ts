// Pure analysis functions of the telemetry service (no NestJS): drift and SLO burn rates.
export * from './errors.js';
export * from './drift.js';
export * from './burn-rate.js';
