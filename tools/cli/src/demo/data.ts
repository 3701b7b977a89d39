import {
  DatasetError,
  deviceTable,
  loadDataset,
  partitionDataset,
  type SplitDataset,
  type Table,
} from '@edgefl/sim';
import { UsageError } from '../usage-error.js';
import type { DemoOptions } from './options.js';

/**
 * The demo's data, from libs/sim: the data set split once (stratified, seeded) into the devices' training pool and
 * a held-out test split no device trains on, standardized on the training split; the training pool partitioned
 * non-IID among the devices (Dirichlet label skew, α = --alpha). Any problem with the data (a missing label column,
 * a non-numeric cell, too few rows for the fleet) is a UsageError: one line, exit 2, before anything boots.
 */
export function prepareData(o: DemoOptions): { dataset: SplitDataset; partitions: Table[] } {
  try {
    const dataset = loadDataset({
      ...(o.datasetPath !== null ? { path: o.datasetPath } : { name: o.dataset }),
      ...(o.label !== null ? { label: o.label } : {}),
      seed: o.seed,
    });
    const perDevice = Math.floor(dataset.train.rows / o.devices);
    if (perDevice < 1)
      throw new DatasetError(
        'too-few-rows',
        `${dataset.train.rows} training rows are too few for ${o.devices} devices`,
      );
    const partition = partitionDataset(dataset, {
      devices: o.devices,
      seed: o.seed,
      alpha: o.dirichletAlpha,
      minRows: Math.min(10, perDevice),
    });
    return { dataset, partitions: partition.rows.map((rows) => deviceTable(dataset.train, rows)) };
  } catch (error) {
    if (error instanceof DatasetError) throw new UsageError(`--dataset ${o.dataset}: ${error.message}`);
    throw error;
  }
}
