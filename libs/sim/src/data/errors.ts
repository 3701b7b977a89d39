/**
 * Why a data set could not be loaded or partitioned. `code` is stable (the CLI maps it to one line and exit code 2);
 * `message` names the file, the column and the row where there is one.
 */
export type DatasetErrorCode =
  | 'unknown-dataset' // a name that is neither a built-in data set nor a path to a file
  | 'file-not-found'
  | 'unreadable' // the file exists but cannot be read or gunzipped
  | 'not-csv' // csv-parse refused it (unclosed quote, …)
  | 'missing-label' // no label column given where one is needed, or the named column is not in the header
  | 'non-numeric' // a feature cell that is not a finite number (names the column and the row)
  | 'ragged-row' // a row with another number of cells than the header
  | 'too-few-rows' // not enough rows for a train/test split, or for the devices' minimum
  | 'single-class' // the label column holds one value only
  | 'invalid-option'; // a seed, fraction, α or count out of range

export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  constructor(
    readonly code: DatasetErrorCode,
    message: string,
  ) {
    super(message);
  }
}
