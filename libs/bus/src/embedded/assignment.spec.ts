import { describe, expect, it } from 'vitest';
import { assignPartitions, planLeases, type TopicPartition } from './assignment.js';

const names = (tps: readonly TopicPartition[] | undefined) =>
  (tps ?? []).map((t) => `${t.topic}/${t.partition}`);

describe('assignPartitions', () => {
  it('gives partition p of a topic to the subscribed member at index p mod n, members ordered by id', () => {
    const assignment = assignPartitions(
      [
        { id: 'c', topics: ['a'] },
        { id: 'a', topics: ['a'] },
        { id: 'b', topics: ['a'] },
      ],
      new Map([['a', 7]]),
    );
    expect(names(assignment.get('a'))).toEqual(['a/0', 'a/3', 'a/6']);
    expect(names(assignment.get('b'))).toEqual(['a/1', 'a/4']);
    expect(names(assignment.get('c'))).toEqual(['a/2', 'a/5']);
  });

  it('assigns each topic over the members subscribed to it only', () => {
    const assignment = assignPartitions(
      [
        { id: 'm1', topics: ['x', 'y'] },
        { id: 'm2', topics: ['y'] },
        { id: 'm3', topics: ['z'] },
      ],
      new Map([
        ['x', 2],
        ['y', 3],
      ]),
    );
    expect(names(assignment.get('m1'))).toEqual(['x/0', 'x/1', 'y/0', 'y/2']);
    expect(names(assignment.get('m2'))).toEqual(['y/1']);
    expect(assignment.get('m3')).toEqual([]); // its topic is not among the partitions given
  });

  it('covers every partition exactly once, whatever the order members are listed in', () => {
    const members = Array.from({ length: 5 }, (_, i) => ({
      id: `member-${(i * 7) % 5}`,
      topics: ['t', 'u'],
    }));
    const partitions = new Map([
      ['t', 12],
      ['u', 1],
    ]);
    const forward = assignPartitions(members, partitions);
    const backward = assignPartitions([...members].reverse(), partitions);
    expect(backward).toEqual(forward);
    const all = [...forward.values()].flatMap(names).sort();
    expect(all).toEqual([...Array.from({ length: 12 }, (_, p) => `t/${p}`), 'u/0'].sort());
  });

  it('assigns nothing without members', () => {
    expect(assignPartitions([], new Map([['t', 3]])).size).toBe(0);
  });
});

describe('planLeases', () => {
  const tp = (topic: string, partition: number) => ({ topic, partition });

  it('claims free partitions, renews its own, and waits for those another member still holds', () => {
    const plan = planLeases(
      'me',
      [tp('t', 0), tp('t', 1), tp('t', 2)],
      [
        { ...tp('t', 1), member: 'me' },
        { ...tp('t', 2), member: 'other' },
      ],
    );
    expect(plan.claim).toEqual([tp('t', 0)]);
    expect(plan.renew).toEqual([tp('t', 1)]);
    expect(plan.release).toEqual([]);
    expect(plan.owned).toEqual([tp('t', 0), tp('t', 1)]);
  });

  it('releases what it holds but no longer should, and never touches other members’ leases', () => {
    const plan = planLeases(
      'me',
      [tp('t', 0)],
      [
        { ...tp('t', 0), member: 'me' },
        { ...tp('t', 1), member: 'me' },
        { ...tp('t', 2), member: 'other' },
      ],
    );
    expect(plan.release).toEqual([tp('t', 1)]);
    expect(plan.owned).toEqual([tp('t', 0)]);
    expect(plan.claim).toEqual([]);
  });
});
