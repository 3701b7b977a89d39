import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planDelta, type DeltaEdge } from './delta-plan.js';

const e = (fromVersion: number, toVersion: number, sizeBytes: number): DeltaEdge => ({
  fromVersion,
  toVersion,
  sizeBytes,
});

describe('delta planning', () => {
  it('picks a direct delta, a chain, or the full artifact by size', () => {
    expect(planDelta(3, 4, 1000, [e(3, 4, 100)])).toMatchObject({ kind: 'direct', totalBytes: 100 });
    expect(planDelta(1, 3, 1000, [e(1, 2, 100), e(2, 3, 100), e(1, 3, 500)])).toMatchObject({
      kind: 'chain',
      totalBytes: 200,
      steps: [e(1, 2, 100), e(2, 3, 100)],
    });
    expect(planDelta(1, 3, 1000, [e(1, 2, 100), e(2, 3, 100), e(1, 3, 150)])).toMatchObject({
      kind: 'direct',
      totalBytes: 150,
    });
    expect(planDelta(1, 3, 150, [e(1, 2, 100), e(2, 3, 100)])).toMatchObject({
      kind: 'full',
      totalBytes: 150,
    });
    expect(planDelta(1, 5, 1000, [e(1, 2, 1)])).toMatchObject({ kind: 'full' });
    expect(planDelta(4, 4, 1000, [])).toMatchObject({ kind: 'none', totalBytes: 0 });
  });

  it('never costs more than the full download, and its steps connect from → to', () => {
    const edges = fc.array(
      fc.record({
        fromVersion: fc.integer({ min: 1, max: 8 }),
        toVersion: fc.integer({ min: 1, max: 8 }),
        sizeBytes: fc.integer({ min: 1, max: 2000 }),
      }),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3000 }),
        edges,
        (from, to, full, list) => {
          const plan = planDelta(from, to, full, list);
          expect(plan.totalBytes).toBeLessThanOrEqual(full);
          if (plan.kind === 'direct' || plan.kind === 'chain') {
            expect(plan.steps[0]!.fromVersion).toBe(from);
            expect(plan.steps[plan.steps.length - 1]!.toVersion).toBe(to);
            for (let i = 1; i < plan.steps.length; i++)
              expect(plan.steps[i]!.fromVersion).toBe(plan.steps[i - 1]!.toVersion);
            expect(plan.steps.reduce((n, s) => n + s.sizeBytes, 0)).toBe(plan.totalBytes);
          }
        },
      ),
    );
  });
});
