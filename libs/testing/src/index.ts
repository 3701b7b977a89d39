export * from './ports.js';
export * from './external.js';
export * from './temp.js';
export * from './service-suite.js';
export * from './compose.js';
export * from './compose-suite.js';
