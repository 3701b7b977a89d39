import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '@edgefl/testing';
import { DEMO_DEFAULTS, parseDemoOptions } from '../src/demo/options.js';
import { runInProcess } from './run-in-process.js';

describe('edgefl demo: bad flags and impossible combinations', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let csv: string;
  beforeAll(async () => {
    dir = await tempDir('edgefl-demo-flags-');
    csv = join(dir.path, 'shop.csv');
    writeFileSync(csv, 'amount,hour,fraud\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n');
  });
  afterAll(() => dir?.remove());

  const cases: Array<[string, string[], RegExp]> = [
    [
      'more attackers than devices',
      ['--devices', '4', '--attackers', '0.9'],
      /--attackers 0.9 of 4 devices leaves no honest device/,
    ],
    [
      'attackers as a count, not a fraction',
      ['--attackers', '3'],
      /--attackers is the fraction of devices that attack, in \[0, 1\)/,
    ],
    [
      'an unknown data set',
      ['--dataset', 'mnist'],
      /unknown data set 'mnist': one of digits, iris, wine, breast_cancer, fraud, or the path of a \.csv file/,
    ],
    [
      'a CSV file that does not exist',
      ['--dataset', 'nowhere/data.csv', '--label', 'y'],
      /--dataset nowhere\/data.csv: no such file/,
    ],
    ['a CSV without --label', ['--dataset', '<csv>'], /is a CSV file: name its label column with --label/],
    [
      'a CSV without the label column',
      ['--dataset', '<csv>', '--label', 'is_fraud'],
      /--dataset .*shop.csv: .*is_fraud/,
    ],
    ['a negative ε', ['--dp-epsilon', '-1'], /--dp-epsilon must be positive, got '-1'/],
    ['ε that is not a number', ['--dp-epsilon', 'lots'], /--dp-epsilon must be a number, got 'lots'/],
    [
      'an unknown robust rule',
      ['--robust', 'average'],
      /unknown --robust rule 'average': one of median, trimmed-mean/,
    ],
    [
      'central DP with a robust rule',
      ['--dp-epsilon', '3', '--robust', 'median'],
      /central DP noises the FedAvg sum/,
    ],
    ['a negative Dirichlet α', ['--alpha', '-1'], /--alpha must be positive, got '-1'/],
    ['zero devices', ['--devices', '0'], /--devices must be an integer from 1 to 10000, got '0'/],
    ['fractional rounds', ['--rounds', '2.5'], /--rounds must be an integer from 1 to 1000, got '2.5'/],
    ['--label with a built-in data set', ['--label', 'target'], /--label is for a CSV file/],
    [
      'an unknown attack',
      ['--attackers', '0.2', '--attack', 'poison'],
      /unknown --attack 'poison': one of sign-flip, scale, noise, alie, ipm, label-flip/,
    ],
    ['attackers without an attack', ['--attackers', '0.2'], /--attackers 0.2 needs --attack <sign-flip\|/],
    ['an attack without attackers', ['--attack', 'ipm'], /--attack ipm needs --attackers FRACTION/],
    [
      'a fraction that rounds to no attacker',
      ['--devices', '10', '--attackers', '0.01', '--attack', 'noise'],
      /--attackers 0.01 of 10 devices is no attacker at all/,
    ],
    ['a negative norm bound', ['--max-norm', '-2'], /--max-norm must be positive, got '-2'/],
    [
      'a norm bound on masked updates',
      ['--secure-aggregation', '--max-norm', '5'],
      /masked updates cannot be norm-checked/,
    ],
    [
      'central DP on masked rounds',
      ['--secure-aggregation', '--dp-epsilon', '3'],
      /--dp-epsilon with --secure-aggregation/,
    ],
    ['secure aggregation with one device', ['--secure-aggregation', '--devices', '1'], /at least 2 devices/],
    [
      'more devices than rows',
      ['--devices', '5000', '--dataset', 'iris'],
      /120 training rows are too few for 5000 devices/,
    ],
  ];

  for (const [what, flags, reason] of cases)
    it(`refuses ${what}: one line, exit 2, nothing booted`, async () => {
      const dataDir = join(dir.path, `never-${what.replace(/\W+/g, '-')}`);
      const args = ['demo', ...flags.map((f) => (f === '<csv>' ? csv : f)), '--data-dir', dataDir];
      const result = await runInProcess(args);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      const lines = result.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^edgefl: /);
      expect(lines[0]).toMatch(reason);
      // the demo makes its data dir as the first step of booting: it was never made
      expect(existsSync(dataDir)).toBe(false);
    });

  it('takes the defaults of npm start when no flag is given', () => {
    expect(parseDemoOptions({})).toMatchObject({
      devices: DEMO_DEFAULTS.devices,
      rounds: DEMO_DEFAULTS.rounds,
      dataset: 'digits',
      datasetPath: null,
      attackers: 0,
      robust: null,
      dpEpsilon: null,
      seed: DEMO_DEFAULTS.seed,
    });
    expect(
      parseDemoOptions({ dataset: csv, label: 'fraud', dpEpsilon: '2.5', robust: undefined }),
    ).toMatchObject({
      datasetPath: csv,
      label: 'fraud',
      dpEpsilon: 2.5,
    });
    expect(
      parseDemoOptions({ attackers: '0.2', attack: 'alie', robust: 'multi-krum', maxNorm: '4' }),
    ).toMatchObject({
      attackers: 0.2,
      attack: 'alie',
      robust: 'multi-krum',
      maxNorm: 4,
      secureAggregation: false,
    });
    expect(parseDemoOptions({ secureAggregation: true, robust: 'trimmed-mean' })).toMatchObject({
      secureAggregation: true,
      maxNorm: null,
    });
  });
});
