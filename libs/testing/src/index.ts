export * from './ports.js';
export * from './external.js';
export * from './temp.js';
