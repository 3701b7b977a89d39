export * from './problem-details.filter.js';
