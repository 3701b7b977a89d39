export * from './config.js';
export * from './service-config.js';
