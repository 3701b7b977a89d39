import type { UpdateTransform, UpdateTransformContext } from '@edgefl/device-sdk';
import { stream } from '../random.js';
import {
  alie,
  alieZ,
  gaussianNoise,
  ipm,
  scaleUpdate,
  signFlip,
  type AttackKind,
  type AttackParams,
  type Update,
} from './attacks.js';

interface RoundPool {
  readonly updates: Map<string, Update>;
  readonly waiters: Set<() => void>;
}

/**
 * The colluding attackers' side channel (ALIE and IPM): each attacker posts the update it computed honestly on its
 * own data and waits until every attacker selected for the round has posted (or `waitShare` of the time left to the
 * round's deadline has passed, when some attacker never trains: declined, offline), then all of them estimate the
 * honest updates from that pool. This is the papers' non-omniscient variant: the attackers see no honest device's
 * update, only their own data's.
 */
export class Collusion {
  readonly attackers: ReadonlySet<string>;
  readonly #waitShare: number;
  readonly #rounds = new Map<string, RoundPool>();

  constructor(attackers: Iterable<string>, options: { waitShare?: number } = {}) {
    this.attackers = new Set(attackers);
    this.#waitShare = options.waitShare ?? 0.5;
  }

  /** Attackers among a round's selected devices. */
  selectedAttackers(selected: readonly string[]): number {
    return selected.filter((id) => this.attackers.has(id)).length;
  }

  /**
   * Posts `update` for (round, device) and resolves with every attacker's honest update posted for the round (its own
   * included), in device-id order so every attacker computes the same estimate.
   */
  async pool(
    roundId: string,
    deviceId: string,
    update: Update,
    expected: number,
    deadline: number,
    signal: AbortSignal,
    now: () => number = Date.now,
  ): Promise<Update[]> {
    let round = this.#rounds.get(roundId);
    if (!round) {
      round = { updates: new Map(), waiters: new Set() };
      this.#rounds.set(roundId, round);
      // a few rounds kept: the pools of older rounds are never read again
      while (this.#rounds.size > 4) this.#rounds.delete(this.#rounds.keys().next().value!);
    }
    round.updates.set(
      deviceId,
      update.map((l) => Float32Array.from(l)),
    );
    for (const wake of round.waiters) wake();
    const r = round;
    if (r.updates.size < expected && !signal.aborted) {
      const waitMs = Math.max(0, (deadline - now()) * this.#waitShare);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          r.waiters.delete(check);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const check = () => {
          if (r.updates.size >= expected) done();
        };
        const timer = setTimeout(done, waitMs);
        timer.unref();
        r.waiters.add(check);
        signal.addEventListener('abort', done);
      });
    }
    return [...r.updates.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, u]) => u);
  }
}

/** What an attacking device does: the attack and its parameters. */
export interface AttackSpec {
  readonly kind: AttackKind;
  readonly params?: AttackParams;
}

/**
 * The device SDK's UpdateTransform for an attack (label flip changes the training data instead, so its transform is
 * the identity: see Fleet). ALIE and IPM need the fleet's Collusion; noise is drawn from the seed, device and round.
 */
export function attackTransform(
  attack: AttackSpec,
  collusion: Collusion | null,
  seed: number,
): UpdateTransform {
  const p = attack.params ?? {};
  switch (attack.kind) {
    case 'sign-flip':
      return (u) => signFlip(u, p.flipFactor);
    case 'scale':
      return (u) => scaleUpdate(u, p.boostFactor);
    case 'noise':
      return (u, ctx) => gaussianNoise(u, p.noiseSd, stream(seed, `noise:${ctx.deviceId}:${ctx.roundId}`));
    case 'label-flip':
      return (u) => u;
    case 'alie':
    case 'ipm': {
      if (!collusion) throw new RangeError(`the ${attack.kind} attack needs the fleet's collusion channel`);
      const c = collusion;
      return async (u: Float32Array[], ctx: UpdateTransformContext) => {
        const selected = ctx.round.selectedDevices;
        const f = Math.max(1, c.selectedAttackers(selected));
        const honest = await c.pool(ctx.roundId, ctx.deviceId, u, f, ctx.round.deadline, ctx.signal);
        if (attack.kind === 'ipm') return ipm(honest, p.ipmEpsilon);
        return alie(honest, p.alieZ ?? alieZ(Math.max(selected.length, f + 1), f));
      };
    }
  }
}

/** The attackers of a fleet: round(fraction × n) device ids drawn with the seed's `attackers` stream. */
export function chooseAttackers(ids: readonly string[], fraction: number, seed: number): Set<string> {
  if (!(fraction >= 0 && fraction < 1))
    throw new RangeError(`attacker fraction must be in [0, 1), got ${fraction}`);
  const count = Math.round(fraction * ids.length);
  const order = stream(seed, 'attackers').shuffle([...ids]);
  return new Set(order.slice(0, count));
}
