import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { initWeights, mlp } from '@edgefl/model';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../data/load.js';
import { SimRandom } from '../random.js';
import { centralizedBaseline, evaluate, rocAuc } from './metrics.js';

const PYTHON = '/usr/bin/python3';
const hasSklearn =
  existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import sklearn'], { stdio: 'ignore' }).status === 0;
if (!hasSklearn)
  console.warn(
    `SKIPPED: ROC AUC against scikit-learn — ${PYTHON} cannot import sklearn (apt-get install python3-sklearn)`,
  );

function sklearnAuc(scores: number[], labels: number[]): number {
  const script =
    'import json,sys\nfrom sklearn.metrics import roc_auc_score\nd=json.load(sys.stdin)\nprint(repr(roc_auc_score(d["y"], d["s"])))';
  const run = spawnSync(PYTHON, ['-c', script], {
    input: JSON.stringify({ y: labels, s: scores }),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(run.stderr);
  return Number(run.stdout.trim());
}

describe('ROC AUC (Mann–Whitney with ties)', () => {
  it('gives 1 for a perfect ranking, 0 for a reversed one, 0.5 for all ties, and counts a tie as one half', () => {
    expect(rocAuc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1])).toBe(1);
    expect(rocAuc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1])).toBe(0);
    expect(rocAuc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1])).toBe(0.5);
    // pairs (pos, neg): (0.4 vs 0.1) win, (0.4 vs 0.4) tie, (0.8 vs both) win → 3.5 / 4
    expect(rocAuc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1])).toBe(0.875);
  });

  it('is null with one class only, and refuses non-binary labels and non-finite scores', () => {
    expect(rocAuc([0.1, 0.2], [1, 1])).toBeNull();
    expect(() => rocAuc([0.1, 0.2], [0, 2])).toThrow(/binary/);
    expect(() => rocAuc([Number.NaN, 0.2], [0, 1])).toThrow(/finite/);
    expect(() => rocAuc([0.1], [0, 1])).toThrow(/labels/);
  });

  it.skipIf(!hasSklearn)('equals scikit-learn’s roc_auc_score on tied and untied random scores', () => {
    const r = new SimRandom(5);
    for (const [n, levels] of [
      [500, 0],
      [800, 7],
      [60, 2],
    ] as const) {
      const labels = Array.from({ length: n }, () => (r.bernoulli(0.3) ? 1 : 0));
      const scores = labels.map((y) => {
        const s = r.normal(y * 0.8, 1);
        return levels > 0 ? Math.round(s * levels) / levels : s;
      });
      expect(rocAuc(scores, labels)).toBeCloseTo(sklearnAuc(scores, labels), 12);
    }
  });
});

describe('evaluation and the centralized baseline', () => {
  it('evaluates accuracy and AUC on breast_cancer; the baseline learns round by round and beats the initial model', () => {
    const data = loadDataset({ name: 'breast_cancer', seed: 3 });
    const spec = mlp(data.train.cols, [16], 1, 'sigmoid');
    const before = evaluate(spec, initWeights(spec, 3, 0.1), data.test, data.task);
    const rounds = centralizedBaseline(spec, data.train, data.test, data.task, {
      rounds: 3,
      epochsPerRound: 2,
      batchSize: 16,
      learningRate: 0.1,
      seed: 3,
    });
    expect(rounds).toHaveLength(3);
    expect(rounds[2]!.accuracy).toBeGreaterThan(0.9);
    expect(rounds[2]!.rocAuc).toBeGreaterThan(0.95);
    expect(rounds[2]!.accuracy).toBeGreaterThan(before.accuracy);
    // multiclass: no AUC
    const digits = loadDataset({ name: 'iris', seed: 3 });
    const s3 = mlp(digits.train.cols, [8], 3, 'softmax');
    expect(evaluate(s3, initWeights(s3, 1), digits.test, digits.task).rocAuc).toBeNull();
  });
});
