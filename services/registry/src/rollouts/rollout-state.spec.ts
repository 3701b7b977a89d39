import type { Clock } from '@edgefl/service-kit';
import { describe, expect, it } from 'vitest';
import { LIVE_STATES, type Release, type RolloutState } from '../storage/records.js';
import { defaultGates } from './gates.js';
import { ALLOWED, canMove, stageName, transition } from './rollout-state.js';

/** A clock the test moves by hand. */
function fakeClock(start: number): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => void (now += ms) };
}

const release = (extra: Partial<Release> = {}): Release => ({
  id: 'rel-1',
  tenantId: 'acme',
  modelId: 'fraud',
  version: 2,
  previousVersion: 1,
  state: 'ROLLING_OUT',
  stageIndex: 0,
  stages: [
    { name: 'canary', percentage: 1 },
    { name: '50pct', percentage: 50 },
    { name: 'full', percentage: 100 },
  ],
  gates: defaultGates({ minDevices: 10, minSoakMs: 1_000, deviceTimeoutMs: 60_000 }),
  targeting: { minRamBytes: null, firmwareRange: null, hardwareClasses: [], groups: [] },
  baseline: null,
  rollForward: null,
  stageStartedAt: 1_000,
  reason: 'started',
  revision: 3,
  createdAt: 500,
  updatedAt: 1_000,
  ...extra,
});

describe('rollout state machine', () => {
  it('allows only the moves of the table; COMPLETED and ROLLED_BACK are final', () => {
    const states = Object.keys(ALLOWED) as RolloutState[];
    const clock = fakeClock(5_000);
    for (const from of states) {
      for (const to of states) {
        const moved = transition(release({ state: from }), { to, reason: 'x' }, clock);
        expect(moved === null, `${from} → ${to}`).toBe(!canMove(from, to));
      }
    }
    expect(ALLOWED.COMPLETED).toEqual([]);
    expect(ALLOWED.ROLLED_BACK).toEqual([]);
    for (const live of LIVE_STATES) expect(canMove(live, 'ROLLED_BACK')).toBe(true);
    expect(canMove('PENDING', 'PAUSED')).toBe(false);
  });

  it('advances a stage at the clock time: the soak restarts, the revision moves, the transition is recorded', () => {
    const clock = fakeClock(9_000);
    const moved = transition(
      release(),
      { to: 'ROLLING_OUT', reason: 'gates passed', nextStage: true },
      clock,
    )!;
    expect(moved.restartsStage).toBe(true);
    expect(moved.patch).toEqual({
      state: 'ROLLING_OUT',
      reason: 'gates passed',
      updatedAt: 9_000,
      stageIndex: 1,
      stageStartedAt: 9_000,
    });
    expect(moved.next).toMatchObject({ stageIndex: 1, stageStartedAt: 9_000, revision: 4 });
    expect(moved.record).toEqual({
      releaseId: 'rel-1',
      fromState: 'ROLLING_OUT',
      toState: 'ROLLING_OUT',
      stage: { name: '50pct', percentage: 50 },
      reason: 'gates passed',
      at: 9_000,
    });
    expect(
      transition(release({ stageIndex: 2 }), { to: 'ROLLING_OUT', reason: 'x', nextStage: true }, clock),
    ).toBeNull();
  });

  it('keeps the soak start on a pause and restarts it on resume', () => {
    const clock = fakeClock(20_000);
    const paused = transition(release(), { to: 'PAUSED', reason: 'operator' }, clock)!;
    expect(paused.restartsStage).toBe(false);
    expect(paused.next.stageStartedAt).toBe(1_000);
    clock.advance(5_000);
    const resumed = transition(paused.next, { to: 'ROLLING_OUT', reason: 'resumed' }, clock)!;
    expect(resumed.restartsStage).toBe(true);
    expect(resumed.next).toMatchObject({
      state: 'ROLLING_OUT',
      stageIndex: 0,
      stageStartedAt: 25_000,
      revision: 5,
    });
  });

  it('records a rollback with its roll-forward, or why there is none', () => {
    const clock = fakeClock(30_000);
    const forward = { version: 3, label: 'rollback-of-v2', sha256: 'ab'.repeat(32), restoredVersion: 1 };
    const rolled = transition(
      release({ state: 'HALTED' }),
      { to: 'ROLLED_BACK', reason: 'gate failed', forward },
      clock,
    )!;
    expect(rolled.rollForward).toEqual({ ...forward, rollbackOf: 2 });
    expect(rolled.next.rollForward).toEqual({ ...forward, rollbackOf: 2 });
    expect(rolled.next.reason).toBe(
      `gate failed; rolled forward to v3 (rollback-of-v2) restoring v1 (sha256 ${'ab'.repeat(32)})`,
    );
    const failed = transition(
      release(),
      { to: 'ROLLED_BACK', reason: 'aborted', forward: { failed: 'x'.repeat(2_000) } },
      clock,
    )!;
    expect(failed.rollForward).toBeNull();
    expect(failed.next.reason).toMatch(/^aborted; no roll-forward version: x+$/);
    expect(failed.next.reason).toHaveLength(1000);
  });

  it('names bare-percentage stages: a small first one is the canary, the last 100% is full', () => {
    expect([1, 10, 50, 100].map((p, i, all) => stageName(p, i, all.length))).toEqual([
      'canary',
      '10pct',
      '50pct',
      'full',
    ]);
    expect(stageName(20, 0, 2)).toBe('20pct');
  });
});
