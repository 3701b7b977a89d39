export * from './messages.js';
export * from './primitives.js';
export * from './fixed-point.js';
export * from './graph.js';
export { planSecAgg, configProblem, SECRET_BYTES, SHARE_BYTES, MAX_COORDINATES } from './protocol.js';
export * from './client.js';
export * from './server.js';
export * from './buckets.js';
export * from './in-process.js';
