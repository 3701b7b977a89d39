export * from './problem-details.filter.js';
export * from './problems.js';
export * from './validation.js';
