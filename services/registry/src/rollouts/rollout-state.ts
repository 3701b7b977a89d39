// The stage state machine of a release, as a pure function: which moves are allowed, and what a move changes
// (state, stage, soak start, reason, roll-forward, revision) and records. The engine persists and acts on it.
import type { Clock } from '@edgefl/service-kit';
import type { Release, ReleaseTransition, RollForward, RolloutState } from '../storage/records.js';

/** Manual and automatic moves of the rollout state machine; COMPLETED and ROLLED_BACK are final. */
export const ALLOWED: Record<RolloutState, readonly RolloutState[]> = {
  PENDING: ['ROLLING_OUT', 'ROLLED_BACK'],
  ROLLING_OUT: ['ROLLING_OUT', 'PAUSED', 'HALTED', 'COMPLETED', 'ROLLED_BACK'],
  PAUSED: ['ROLLING_OUT', 'ROLLED_BACK'],
  HALTED: ['ROLLED_BACK', 'ROLLING_OUT'],
  COMPLETED: [],
  ROLLED_BACK: [],
};

export const canMove = (from: RolloutState, to: RolloutState): boolean => ALLOWED[from].includes(to);

/** The name of a stage given as a bare percentage: the first small one is the canary, the last 100% is "full". */
export function stageName(percentage: number, index: number, count: number): string {
  if (index === count - 1 && percentage === 100) return 'full';
  if (index === 0 && percentage < 10) return 'canary';
  return `${percentage}pct`;
}

/** A rollback's roll-forward version, built (what it is) or not (why not). */
export type RollForwardOutcome =
  { version: number; label: string; sha256: string; restoredVersion: number } | { failed: string };

export interface Move {
  to: RolloutState;
  reason: string;
  /** Advance to the next stage (a passed gate). */
  nextStage?: boolean;
  forward?: RollForwardOutcome | null;
}

export type ReleasePatch = Pick<Release, 'state' | 'reason' | 'updatedAt' | 'stageIndex'> &
  Partial<Pick<Release, 'stageStartedAt' | 'rollForward'>>;

export interface Transition {
  /** What the store's compare-and-set writes. */
  patch: ReleasePatch;
  /** The release after the move (revision + 1). */
  next: Release;
  /** The transition to append (its sequence number is the store's). */
  record: Omit<ReleaseTransition, 'seq'>;
  /** A stage (re)starts: its soak starts now and its manifest is published. */
  restartsStage: boolean;
  rollForward: RollForward | null;
}

/** The move of `current` (null when it is not allowed from its state or there is no next stage). */
export function transition(current: Release, move: Move, clock: Clock): Transition | null {
  if (!canMove(current.state, move.to)) return null;
  const stageIndex = move.nextStage ? current.stageIndex + 1 : current.stageIndex;
  if (stageIndex >= current.stages.length) return null;
  const now = clock.now();
  const restartsStage =
    move.nextStage === true || (move.to === 'ROLLING_OUT' && current.state !== 'ROLLING_OUT');
  let rollForward: RollForward | null = null;
  let reason = move.reason;
  const forward = move.forward;
  if (forward && 'version' in forward) {
    rollForward = { ...forward, rollbackOf: current.version };
    reason = `${move.reason}; rolled forward to v${forward.version} (${forward.label}) restoring v${forward.restoredVersion} (sha256 ${forward.sha256})`;
  } else if (forward) {
    reason = `${move.reason}; no roll-forward version: ${forward.failed}`.slice(0, 1000);
  }
  const patch: ReleasePatch = {
    state: move.to,
    reason,
    updatedAt: now,
    stageIndex,
    ...(restartsStage ? { stageStartedAt: now } : {}),
    ...(rollForward ? { rollForward } : {}),
  };
  const next: Release = { ...current, ...patch, revision: current.revision + 1 };
  return {
    patch,
    next,
    restartsStage,
    rollForward,
    record: {
      releaseId: current.id,
      fromState: current.state,
      toState: move.to,
      stage: next.stages[stageIndex]!,
      reason,
      at: now,
    },
  };
}
