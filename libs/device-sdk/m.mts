import { FRAUD_MLP, initWeights } from '@edgefl/model';
import { Trainer, targetsFromLabels } from './src/training/trainer.ts';
const N = 5000,
  spec = FRAUD_MLP;
const x = new Float32Array(N * 30).map(() => Math.random() * 2 - 1);
const labels = Array.from({ length: N }, (_, i) => (x[i * 30]! + x[i * 30 + 1]! > 0 ? 1 : 0));
const data = { features: 30, rows: N, x, y: targetsFromLabels(spec, labels) };
const w = initWeights(spec, 1, 0.1);
const tr = new Trainer(spec, 32);
for (let i = 0; i < 5; i++) {
  const t0 = performance.now();
  const r = tr.train(w, data, { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'adam' });
  console.log('ours', (performance.now() - t0).toFixed(1), 'ms', r.epochLoss);
}
