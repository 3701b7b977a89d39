import { predict, Trainer } from '@edgefl/device-sdk';
import { datasetOf, type Table } from '@edgefl/sim';
import { initWeights, type ModelSpec, type NamedTensor } from '@edgefl/model';

/**
 * Accuracy of weights on a table, through the device SDK's training forward pass (the same function the ONNX export
 * is tested against to 1e-5): argmax for a softmax head, p ≥ 0.5 for a single sigmoid output.
 */
export function accuracyOf(spec: ModelSpec, weights: readonly NamedTensor[], table: Table): number {
  if (table.rows === 0) return 0;
  const out = predict(spec, weights, table.features, table.rows);
  let correct = 0;
  for (let r = 0; r < table.rows; r++) {
    let picked = 0;
    if (spec.outputs === 1) picked = out[r]! >= 0.5 ? 1 : 0;
    else
      for (let c = 1; c < spec.outputs; c++)
        if (out[r * spec.outputs + c]! > out[r * spec.outputs + picked]!) picked = c;
    if (picked === table.labels[r]) correct++;
  }
  return correct / table.rows;
}

/**
 * The centralized baseline: the same model trained on the whole training split in one place (the SDK's trainer,
 * Adam), as many passes over the data as the fleet makes in all its rounds, evaluated on the same test split.
 */
export function centralizedBaseline(
  spec: ModelSpec,
  train: Table,
  test: Table,
  options: { epochs: number; batchSize: number; learningRate: number; seed: number },
): { accuracy: number } {
  const trainer = new Trainer(spec, options.batchSize);
  const result = trainer.train(initWeights(spec, options.seed), datasetOf(spec, train), {
    epochs: options.epochs,
    batchSize: options.batchSize,
    learningRate: options.learningRate,
    optimizer: 'adam',
    seed: options.seed,
  });
  return { accuracy: accuracyOf(spec, result.weights, test) };
}
