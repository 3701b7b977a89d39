export type { SplitDataset, Table, Task } from './data/types.js';
