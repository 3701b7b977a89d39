export * from './lifecycle.service.js';
