// Oracles: outputs of Flower's own aggregation code and of Opacus's RDP accountant (../shared/testvectors).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { computeEpsilon, DP_ACCOUNTING_DEFAULT_ORDERS, OPACUS_DEFAULT_ORDERS } from './rdp.js';
import { createRule, type StrategyName } from './rules.js';
import type { ClientUpdate } from './types.js';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const vectors = join(repoRoot, '..', 'shared', 'testvectors');
const present = existsSync(join(vectors, 'fl')) && existsSync(join(vectors, 'dp'));
if (!present)
  console.warn(`SKIPPED fl oracle tests: no test vectors at ../shared/testvectors (from the repo root)`);

interface FlCase {
  name: string;
  params: { f: number; m: number; beta: number };
  input: { clients: { num_examples: number; weights: number[][] }[] };
  expected: Record<string, { weights: number[][]; selected?: number[] }>;
  tolerance: { abs: number; rel: number };
}

function load(file: string): FlCase {
  return JSON.parse(readFileSync(join(vectors, 'fl', file), 'utf8')) as FlCase;
}

function toUpdates(c: FlCase): ClientUpdate[] {
  return c.input.clients.map((cl) => ({
    numExamples: cl.num_examples,
    weights: cl.weights.map((l) => Float32Array.from(l)),
  }));
}

const files = present ? readdirSync(join(vectors, 'fl')).filter((f) => f.endsWith('.json')) : [];

describe.skipIf(!present)('Flower aggregation oracle', () => {
  it('has cases', () => expect(files.length).toBeGreaterThan(0));
  for (const file of files) {
    const c = load(file);
    for (const [strategy, expected] of Object.entries(c.expected)) {
      it(`${c.name}: ${strategy}`, () => {
        const rule = createRule(strategy as StrategyName, c.params);
        const got = rule.aggregate(toUpdates(c));
        expect(got.weights.length).toBe(expected.weights.length);
        let worst = 0;
        got.weights.forEach((layer, l) => {
          const want = expected.weights[l]!;
          expect(layer.length).toBe(want.length);
          for (let j = 0; j < want.length; j++) {
            const err = Math.abs(layer[j]! - want[j]!);
            const allowed = c.tolerance.abs + c.tolerance.rel * Math.abs(want[j]!);
            worst = Math.max(worst, err / allowed);
          }
        });
        expect(worst).toBeLessThanOrEqual(1);
        if (expected.selected) expect(got.selected).toEqual(expected.selected);
      });
    }
  }
});

interface DpCases {
  order_grids: Record<string, number[] | object>;
  tolerance: { rel: number };
  cases: {
    id: string;
    q: number;
    sigma: number;
    steps: number;
    delta: number;
    orders: string;
    expected_eps: number;
    expected_eps_classic: number;
  }[];
}

describe.skipIf(!present)('Opacus RDP accountant oracle', () => {
  const dp = present
    ? (JSON.parse(readFileSync(join(vectors, 'dp', 'rdp_cases.json'), 'utf8')) as DpCases)
    : null;
  it('our named grids are the same as the reference grids', () => {
    expect([...OPACUS_DEFAULT_ORDERS]).toEqual(dp!.order_grids['opacus_default']);
    expect([...DP_ACCOUNTING_DEFAULT_ORDERS]).toEqual(dp!.order_grids['dp_accounting_default']);
  });
  for (const k of dp?.cases ?? []) {
    it(`${k.id}: improved and classic conversions match to ${dp!.tolerance.rel} relative`, () => {
      const orders = dp!.order_grids[k.orders] as number[];
      const query = { q: k.q, sigma: k.sigma, steps: k.steps, delta: k.delta, orders };
      const improved = computeEpsilon(query).epsilon;
      const classic = computeEpsilon({ ...query, conversion: 'classic' }).epsilon;
      expect(Math.abs(improved / k.expected_eps - 1)).toBeLessThan(dp!.tolerance.rel);
      expect(Math.abs(classic / k.expected_eps_classic - 1)).toBeLessThan(dp!.tolerance.rel);
    });
  }
});
