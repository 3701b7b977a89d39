import { join } from 'node:path';
import { tempDir } from '@edgefl/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GroupMembership, type Rebalanced } from './membership.js';
import { BusStore } from './store.js';

// Group membership on a real bus file, with the clock passed in: no timers, no waiting.
const timings = { heartbeatIntervalMs: 1_000, sessionTimeoutMs: 10_000 };
let dir: { path: string; remove: () => Promise<void> };
let store: BusStore;

beforeEach(async () => {
  dir = await tempDir('edgefl-membership-');
  store = new BusStore(join(dir.path, 'bus.sqlite'), undefined, {
    defaultPartitions: 4,
    autoCreateTopics: true,
  });
});
afterEach(async () => {
  store.close();
  await dir.remove();
});

const member = () => new GroupMembership(store, 'g', ['t'], timings);
const owned = async (r: Promise<Rebalanced>) =>
  [...(await r).owned.values()].map((tp) => tp.partition).sort();

describe('GroupMembership', () => {
  it("writes a delivery's start mark and progress in the same turn when the lock is free (no turn per commit)", async () => {
    const a = member();
    await a.join(true);
    await a.rebalance(Date.now());
    // Neither promise is awaited before the reads: queued for a later turn, the rows would not be there yet, and a
    // producer in the same process would get a turn between every commitEvery records of each partition.
    const started = a.begin('t', 0, 0);
    expect(a.committed('t', 0)).toBe(0);
    const committed = a.commit('t', 0, 50, false);
    expect(a.committed('t', 0)).toBe(50);
    expect(await started).toBe(0);
    expect(await committed).toBe(true);
  });

  it('hands partitions over only after the old owner releases them', async () => {
    const now = Date.now();
    const a = member();
    await a.join(true);
    expect(await owned(a.rebalance(now))).toEqual([0, 1, 2, 3]);
    const b = member();
    await b.join(true);
    const [first] = [a, b].sort((x, y) => (x.memberId < y.memberId ? -1 : 1));
    const bShare = first === b ? [0, 2] : [1, 3];
    // b's share is still leased to a: b owns nothing until a rebalances.
    expect(await owned(b.rebalance(now))).toEqual([]);
    expect((await owned(a.rebalance(now + 1))).filter((p) => bShare.includes(p))).toEqual([]);
    expect(await owned(b.rebalance(now + 2))).toEqual(bShare);
  });

  it('takes over the partitions of a member silent past the session, whose commits are then refused', async () => {
    const now = Date.now();
    const a = member();
    const b = member();
    await a.join(true);
    await b.join(true);
    await a.rebalance(now);
    await b.rebalance(now);
    await a.rebalance(now);
    const bOwned = await owned(b.rebalance(now));
    expect(bOwned.length).toBe(2);
    expect(await b.commit('t', bOwned[0]!, 5, true)).toBe(true);
    expect(a.committed('t', bOwned[0]!)).toBe(5);
    // b stops heartbeating; a rebalances once the session has passed.
    expect(await owned(a.rebalance(now + timings.sessionTimeoutMs + 1))).toEqual([0, 1, 2, 3]);
    expect(await b.commit('t', bOwned[0]!, 9, true)).toBe(false);
    expect(a.committed('t', bOwned[0]!)).toBe(5);
    expect(await b.heartbeat(now + timings.sessionTimeoutMs + 2)).toEqual(new Set());
  });

  it('starts a new group at the end unless fromBeginning, and a later member keeps the group position', async () => {
    await store.tx(() => {
      store.partitionsOf('t', true);
      store.stmt('UPDATE bus_partitions SET next_off = 7 WHERE topic = ?').run('t');
    });
    const late = new GroupMembership(store, 'late', ['t'], timings);
    await late.join(false);
    expect(late.committed('t', 0)).toBe(7);
    const early = new GroupMembership(store, 'early', ['t'], timings);
    await early.join(true);
    expect(early.committed('t', 0)).toBe(0);
    await new GroupMembership(store, 'late', ['t'], timings).join(true); // the group's first member fixed it
    expect(late.committed('t', 0)).toBe(7);
  });

  it('leaves at once: its partitions are free for the next rebalance of another member', async () => {
    const now = Date.now();
    const a = member();
    const b = member();
    await a.join(true);
    await b.join(true);
    await a.rebalance(now);
    await b.rebalance(now);
    await a.rebalance(now);
    await b.rebalance(now);
    await b.leave();
    expect(await owned(a.rebalance(now + 1))).toEqual([0, 1, 2, 3]);
  });
});
