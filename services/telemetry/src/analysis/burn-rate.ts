// SLO burn rates and multi-window, multi-burn-rate alerting, as in the Google SRE workbook, ch. 5 "Alerting on SLOs"
// (https://sre.google/workbook/alerting-on-slos/), "6: Multiwindow, Multi-Burn-Rate Alerts". Pure functions.
//
// Every SLI is a ratio of good events to all events over a window (availability: successful inferences; p99 latency:
// inferences faster than the objective's threshold; freshness: devices heard from recently; OTA success: updates
// reaching ACTIVE). An objective promises `target` of them good over `windowMs` (e.g. 99.9 % over 30 days), so the
// error budget is 1 − target. The burn rate over a window is the error ratio over that window divided by the budget:
// 1 spends exactly the budget over the SLO window, 14.4 spends 2 % of a 30-day budget in one hour.
//
// The workbook's recommended alerts for a 30-day SLO (its table "Recommended parameters"):
//
//   severity  long window  short window  burn rate  budget consumed when it fires
//   page      1 h          5 min         14.4       2 %
//   page      6 h          30 min        6          5 %
//   ticket    1 d          2 h           3          10 %
//   ticket    3 d          6 h           1          10 %
//
// An alert fires when the burn rate exceeds its threshold over the long AND the short window (the short window,
// 1/12 of the long one, makes it stop soon after the problem stops). For another SLO window the windows scale with
// it (windowMs / 30 d) and the burn rates stay, which keeps "budget consumed" the same — how the workbook adapts the
// table. Thresholds are strict (`>`), as in its PromQL (`… > (14.4 * 0.001)`) and in infra/prometheus/.
import type { SliKind, SloSeverity } from '@edgefl/contracts';
import { AnalysisError } from './errors.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** The SLO window the workbook's table is written for. */
export const WORKBOOK_SLO_WINDOW_MS = 30 * DAY;

export interface SloObjective {
  name: string;
  sli: SliKind;
  /** Share of good events promised, in (0, 1), e.g. 0.999. */
  target: number;
  /** The SLO window, e.g. 30 days. */
  windowMs: number;
}

/** One row of the workbook's table, for the 30-day window. */
export interface BurnRateWindow {
  severity: SloSeverity;
  longWindowMs: number;
  shortWindowMs: number;
  /** Burn rate both windows must exceed. */
  burnRate: number;
}

/** The workbook's recommended multi-window, multi-burn-rate alerts for a 30-day SLO. */
export const WORKBOOK_WINDOWS: readonly BurnRateWindow[] = [
  { severity: 'PAGE', longWindowMs: HOUR, shortWindowMs: 5 * MINUTE, burnRate: 14.4 },
  { severity: 'PAGE', longWindowMs: 6 * HOUR, shortWindowMs: 30 * MINUTE, burnRate: 6 },
  { severity: 'TICKET', longWindowMs: DAY, shortWindowMs: 2 * HOUR, burnRate: 3 },
  { severity: 'TICKET', longWindowMs: 3 * DAY, shortWindowMs: 6 * HOUR, burnRate: 1 },
];

export function checkObjective(objective: SloObjective): void {
  if (typeof objective !== 'object' || objective === null) {
    throw new AnalysisError('BAD_OBJECTIVE', 'objective: not an object');
  }
  if (typeof objective.name !== 'string' || objective.name.length === 0) {
    throw new AnalysisError('BAD_OBJECTIVE', 'objective.name must be a non-empty string');
  }
  const { target, windowMs } = objective;
  if (typeof target !== 'number' || !(target > 0 && target < 1)) {
    throw new AnalysisError(
      'BAD_OBJECTIVE',
      `objective ${objective.name}: target must be in (0, 1), e.g. 0.999`,
    );
  }
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs < HOUR) {
    throw new AnalysisError(
      'BAD_OBJECTIVE',
      `objective ${objective.name}: windowMs must be at least one hour`,
    );
  }
}

/** Burn rate: error ratio ÷ error budget (1 − target). */
export function burnRate(errorRatio: number, target: number): number {
  if (typeof errorRatio !== 'number' || !(errorRatio >= 0 && errorRatio <= 1)) {
    throw new AnalysisError('BAD_OPTION', 'errorRatio must be in [0, 1]');
  }
  if (typeof target !== 'number' || !(target > 0 && target < 1)) {
    throw new AnalysisError('BAD_OBJECTIVE', 'target must be in (0, 1)');
  }
  return errorRatio / (1 - target);
}

/** The workbook's windows scaled to an SLO window (windows × windowMs / 30 d, burn rates unchanged), rounded to ms. */
export function scaledWindows(windowMs: number): BurnRateWindow[] {
  const scale = windowMs / WORKBOOK_SLO_WINDOW_MS;
  return WORKBOOK_WINDOWS.map((w) => ({
    ...w,
    longWindowMs: Math.round(w.longWindowMs * scale),
    shortWindowMs: Math.round(w.shortWindowMs * scale),
  }));
}

export interface BurnRateVerdict extends BurnRateWindow {
  /** Burn rate over the long / short window; null when there were no events in it. */
  burnRateLong: number | null;
  burnRateShort: number | null;
  /** Both windows above the threshold (a window without events never fires). */
  firing: boolean;
  /** Share of the SLO window's budget an alert spends before it fires (burnRate × longWindowMs / windowMs). */
  budgetConsumed: number;
}

export interface BurnRateEvaluation {
  objective: SloObjective;
  /** One per row of the (scaled) workbook table, in its order. */
  verdicts: BurnRateVerdict[];
  /** Some page row fires. */
  page: boolean;
  /** Some ticket row fires. */
  ticket: boolean;
  /** 1 − error ratio over the SLO window ÷ budget: 1 untouched, 0 spent, below 0 overspent; null without events. */
  errorBudgetRemaining: number | null;
}

/**
 * Evaluates an objective. `errorRatioOver(windowMs)` answers the error ratio (bad ÷ all events, in [0, 1]) over the
 * last `windowMs`, or null when there were no events; it is asked for every long and short window and for the SLO
 * window. An answer outside [0, 1] (or NaN) is an AnalysisError BAD_OPTION.
 */
export function evaluateBurnRate(
  objective: SloObjective,
  errorRatioOver: (windowMs: number) => number | null,
): BurnRateEvaluation {
  checkObjective(objective);
  const rate = (windowMs: number): number | null => {
    const ratio = errorRatioOver(windowMs);
    if (ratio === null) return null;
    if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) {
      throw new AnalysisError(
        'BAD_OPTION',
        `objective ${objective.name}: error ratio over ${windowMs} ms must be in [0, 1] or null`,
      );
    }
    return burnRate(ratio, objective.target);
  };
  const verdicts = scaledWindows(objective.windowMs).map((w): BurnRateVerdict => {
    const burnRateLong = rate(w.longWindowMs);
    const burnRateShort = rate(w.shortWindowMs);
    return {
      ...w,
      burnRateLong,
      burnRateShort,
      firing:
        burnRateLong !== null &&
        burnRateShort !== null &&
        burnRateLong > w.burnRate &&
        burnRateShort > w.burnRate,
      budgetConsumed: (w.burnRate * w.longWindowMs) / objective.windowMs,
    };
  });
  const whole = rate(objective.windowMs);
  return {
    objective,
    verdicts,
    page: verdicts.some((v) => v.severity === 'PAGE' && v.firing),
    ticket: verdicts.some((v) => v.severity === 'TICKET' && v.firing),
    errorBudgetRemaining: whole === null ? null : 1 - whole,
  };
}
