export type { SplitDataset, Table, Task } from './data/types.js';
export * from './fleet/fleet.js';
export * from './fleet/probe.js';
