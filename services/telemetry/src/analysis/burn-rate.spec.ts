import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from '@edgefl/testing';
import {
  burnRate,
  evaluateBurnRate,
  scaledWindows,
  WORKBOOK_WINDOWS,
  type SloObjective,
} from './burn-rate.js';
import { AnalysisError } from './errors.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

const availability: SloObjective = {
  name: 'fraud-availability',
  sli: 'AVAILABILITY',
  target: 0.999,
  windowMs: 30 * DAY,
};

/** An error-ratio source from burn rates per window (ratio = burn rate × budget), 0 elsewhere. */
const burning =
  (objective: SloObjective, byWindow: Record<number, number>) =>
  (windowMs: number): number | null =>
    (byWindow[windowMs] ?? 0) * (1 - objective.target);

describe('burn rate', () => {
  it('is the error ratio over the error budget', () => {
    expect(burnRate(0.0144, 0.999)).toBeCloseTo(14.4, 9);
    expect(burnRate(0.001, 0.999)).toBeCloseTo(1, 9);
    expect(burnRate(0, 0.99)).toBe(0);
    expect(burnRate(1, 0.9)).toBeCloseTo(10, 9);
    expect(codeOf(AnalysisError, () => burnRate(1.5, 0.999))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => burnRate(Number.NaN, 0.999))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => burnRate(0.1, 1))).toBe('BAD_OBJECTIVE');
  });
});

describe('the SRE workbook table (30-day SLO)', () => {
  it('has the recommended rows: windows, burn rates and the budget each spends before it fires', () => {
    const e = evaluateBurnRate(availability, () => 0);
    expect(
      e.verdicts.map((v) => [v.severity, v.longWindowMs, v.shortWindowMs, v.burnRate, v.budgetConsumed]),
    ).toEqual([
      ['PAGE', HOUR, 5 * MIN, 14.4, expect.closeTo(0.02, 12)],
      ['PAGE', 6 * HOUR, 30 * MIN, 6, expect.closeTo(0.05, 12)],
      ['TICKET', DAY, 2 * HOUR, 3, expect.closeTo(0.1, 12)],
      ['TICKET', 3 * DAY, 6 * HOUR, 1, expect.closeTo(0.1, 12)],
    ]);
    expect(e).toMatchObject({ page: false, ticket: false, errorBudgetRemaining: 1 });
  });

  it.each([
    // [case, burn rates by window, page, ticket, which rows fire]
    ['fast burn: 14.4× over 1 h and 5 min pages', { [HOUR]: 15, [5 * MIN]: 16 }, true, false, [0]],
    ['14.4× over 1 h but recovered over 5 min: no page', { [HOUR]: 15, [5 * MIN]: 2 }, false, false, []],
    ['a 5 min spike alone: no page', { [5 * MIN]: 100 }, false, false, []],
    ['just under 14.4× over both: no page', { [HOUR]: 14.3, [5 * MIN]: 14.3 }, false, false, []],
    ['6× over 6 h and 30 min pages', { [6 * HOUR]: 6.5, [30 * MIN]: 7 }, true, false, [1]],
    ['3× over 1 d and 2 h tickets', { [DAY]: 3.2, [2 * HOUR]: 3.5 }, false, true, [2]],
    ['1× over 3 d and 6 h tickets', { [3 * DAY]: 1.1, [6 * HOUR]: 1.2 }, false, true, [3]],
    [
      'exactly 1× (spending the budget as planned) does not ticket',
      { [3 * DAY]: 1, [6 * HOUR]: 1 },
      false,
      false,
      [],
    ],
    [
      'a total outage fires every row',
      {
        [HOUR]: 999,
        [5 * MIN]: 999,
        [6 * HOUR]: 999,
        [30 * MIN]: 999,
        [DAY]: 999,
        [2 * HOUR]: 999,
        [3 * DAY]: 999,
      },
      true,
      true,
      [0, 1, 2, 3],
    ],
  ] as const)('%s', (_name, byWindow, page, ticket, rows) => {
    const e = evaluateBurnRate(availability, burning(availability, byWindow));
    expect(e.page).toBe(page);
    expect(e.ticket).toBe(ticket);
    expect(e.verdicts.flatMap((v, i) => (v.firing ? [i] : []))).toEqual(rows);
    const fast = e.verdicts[0]!;
    expect(fast.burnRateLong).toBeCloseTo((byWindow as Record<number, number>)[HOUR] ?? 0, 9);
  });

  it('reports the error budget left over the SLO window', () => {
    const ratio = (w: number) => (w === 30 * DAY ? 0.00025 : 0);
    expect(evaluateBurnRate(availability, ratio).errorBudgetRemaining).toBeCloseTo(0.75, 9);
    const over = (w: number) => (w === 30 * DAY ? 0.003 : 0);
    expect(evaluateBurnRate(availability, over).errorBudgetRemaining).toBeCloseTo(-2, 9);
  });

  it('never fires a window without events, and says so (null burn rates, null budget)', () => {
    const e = evaluateBurnRate(availability, (w) => (w === HOUR ? 0.5 : null));
    expect(e.page).toBe(false);
    expect(e.verdicts[0]).toMatchObject({ burnRateShort: null, firing: false });
    expect(e.errorBudgetRemaining).toBeNull();
  });
});

describe('windows scaled to other SLO windows', () => {
  it('keeps the burn rates and the budget consumed, scales the windows (28 d, 7 d)', () => {
    const four = scaledWindows(28 * DAY);
    expect(four[0]).toMatchObject({ longWindowMs: 56 * MIN, shortWindowMs: Math.round((5 * MIN * 28) / 30) });
    const week: SloObjective = { ...availability, windowMs: 7 * DAY };
    const e = evaluateBurnRate(week, () => 0);
    expect(e.verdicts.map((v) => v.burnRate)).toEqual(WORKBOOK_WINDOWS.map((w) => w.burnRate));
    expect(e.verdicts[0]!.longWindowMs).toBe(Math.round((HOUR * 7) / 30));
    expect(e.verdicts[3]!.longWindowMs).toBe(Math.round((3 * DAY * 7) / 30));
    e.verdicts.forEach((v, i) =>
      expect(v.budgetConsumed).toBeCloseTo(
        [0.02, 0.05, 0.1, 0.1][i]!,
        6, // windows are rounded to whole milliseconds
      ),
    );
    // the scaled fast-burn row fires on its own windows
    const fast = e.verdicts[0]!;
    const firing = evaluateBurnRate(
      week,
      burning(week, { [fast.longWindowMs]: 20, [fast.shortWindowMs]: 20 }),
    );
    expect(firing.page).toBe(true);
  });

  it('a higher error ratio never stops an alert that fires (monotone, property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0.9, 0.99, 0.995, 0.999, 0.9999),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (target, a, b) => {
          const objective = { ...availability, target };
          const [lo, hi] = a < b ? [a, b] : [b, a];
          const low = evaluateBurnRate(objective, () => lo);
          const high = evaluateBurnRate(objective, () => hi);
          low.verdicts.forEach((v, i) => {
            if (v.firing) expect(high.verdicts[i]!.firing).toBe(true);
          });
          expect(high.errorBudgetRemaining!).toBeLessThanOrEqual(low.errorBudgetRemaining!);
          expect(low.errorBudgetRemaining!).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 300, seed: 20261213 },
    );
  });
});

describe('bad objectives and answers', () => {
  it('refuses them with a coded AnalysisError', () => {
    const bad = (o: Partial<SloObjective>) =>
      codeOf(AnalysisError, () => evaluateBurnRate({ ...availability, ...o }, () => 0));
    expect(bad({ target: 1 })).toBe('BAD_OBJECTIVE');
    expect(bad({ target: 0 })).toBe('BAD_OBJECTIVE');
    expect(bad({ target: Number.NaN })).toBe('BAD_OBJECTIVE');
    expect(bad({ windowMs: MIN })).toBe('BAD_OBJECTIVE');
    expect(bad({ name: '' })).toBe('BAD_OBJECTIVE');
    expect(codeOf(AnalysisError, () => evaluateBurnRate(availability, () => 2))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => evaluateBurnRate(availability, () => -0.1))).toBe('BAD_OPTION');
    expect(codeOf(AnalysisError, () => evaluateBurnRate(availability, () => Number.NaN))).toBe('BAD_OPTION');
  });
});
