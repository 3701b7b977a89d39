export * from './ports.js';
export * from './external.js';
export * from './temp.js';
export * from './service-suite.js';
