export * from './database.js';
export * from './errors.js';
export * from './sqlite.js';
export * from './store-providers.js';
