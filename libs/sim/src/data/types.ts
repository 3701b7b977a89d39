/**
 * The simulator's data model, shared by the data sets (src/data), the attackers (src/attacks) and the fleet
 * (src/fleet). A table is row-major float32 features with integer class labels.
 */
export interface Table {
  /** rows × cols, row-major. */
  readonly features: Float32Array;
  readonly labels: Int32Array;
  readonly rows: number;
  readonly cols: number;
}

export type Task = 'binary' | 'multiclass';

/** A data set split once into the devices' training pool and a held-out test split no device trains on. */
export interface SplitDataset {
  readonly name: string;
  readonly task: Task;
  readonly featureNames: readonly string[];
  /** classNames[label] is the original label value. */
  readonly classNames: readonly string[];
  readonly train: Table;
  readonly test: Table;
  /** Per-feature mean and standard deviation of the training split, applied to both splits. */
  readonly standardization: { readonly mean: Float64Array; readonly std: Float64Array };
  /** The label column's name (`target` for scikit-learn's files, `is_fraud` for the fraud generator). */
  readonly labelName?: string;
  /** Where the rows come from, for data sets that have regions (the fraud generator): an index into `names` per row. */
  readonly regions?: {
    readonly names: readonly string[];
    readonly train: Uint8Array;
    readonly test: Uint8Array;
  };
}
