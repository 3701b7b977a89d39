export type { SplitDataset, Table, Task } from './data/types.js';
export * from './data/errors.js';
export * from './data/csv.js';
export * from './data/split.js';
export * from './data/fraud.js';
export * from './data/load.js';
export * from './data/partition.js';
export * from './random.js';
