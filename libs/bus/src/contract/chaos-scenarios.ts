// Scenarios of the bus under chaos (issue 10), part of the contract suite: processes killed mid-batch and on a
// record, a member SIGKILLed while it holds partitions, a partition that keeps failing beside healthy ones.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, tempDir } from '@edgefl/testing';
import { expect, it } from 'vitest';
import { readDeadLetters } from './dead-letters.js';
import { partitionForKey } from '../partitioner.js';
import { SqliteInbox } from '../inbox.js';
import type { BusRecord, EventBus } from '../port.js';
import type { BusContractTarget } from './bus-contract-suite.js';
import { startChildConsumer } from './crash.js';

export interface ChaosContext {
  target: () => BusContractTarget;
  open: () => Promise<EventBus>;
  fresh: (bus: EventBus) => Promise<{ topic: string; group: string }>;
  timeout: number;
  partitions: number;
}

const child = (mode: string, arg: string, file: string, options: object) => ({
  file: './chaos-child.ts',
  args: [mode, arg, file, JSON.stringify(options)],
});
const lines = (file: string) => {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
};

export function chaosScenarios(c: ChaosContext): void {
  it('replays at most the progress window after a crash mid-batch', async () => {
    const bus = await c.open();
    const { topic, group } = await c.fresh(bus);
    const dir = await tempDir('edgefl-chaos-');
    try {
      const effects = join(dir.path, 'effects.log');
      await bus.publish(
        Array.from({ length: 130 }, (_, i) => ({ topic, key: 'one', value: Buffer.from(`r${i}`) })),
      );
      const options = { commitEvery: 50, commitIntervalMs: 600_000, maxBatchSize: 500 };
      const killed = await startChildConsumer(
        c.target().childConfig(),
        group,
        topic,
        child('kill-after', '120', effects, options),
      );
      await killed.exited();
      expect(lines(effects)).toHaveLength(120);
      const after: string[] = [];
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void after.push(r.eventId),
      });
      await eventually('the rest after the crash', () => after.length >= 10, c.timeout);
      await new Promise((r) => setTimeout(r, 300));
      await sub.close();
      const before = new Set(lines(effects));
      const replayed = after.filter((id) => before.has(id));
      console.log(`chaos: a crash after 120 of 130 records (commitEvery 50) replayed ${replayed.length}`);
      expect(new Set([...before, ...after]).size).toBe(130);
      expect(replayed.length).toBeLessThanOrEqual(options.commitEvery);
    } finally {
      await dir.remove();
    }
  });

  it('replays no effect through the transactional inbox after a crash mid-batch', async () => {
    const bus = await c.open();
    const { topic, group } = await c.fresh(bus);
    const dir = await tempDir('edgefl-chaos-');
    try {
      const effects = join(dir.path, 'effects.sqlite');
      await bus.publish(
        Array.from({ length: 130 }, (_, i) => ({ topic, key: 'one', value: Buffer.from(`r${i}`) })),
      );
      const options = { commitEvery: 50, commitIntervalMs: 600_000 };
      const killed = await startChildConsumer(
        c.target().childConfig(),
        group,
        topic,
        child('inbox-kill-after', '120', effects, options),
      );
      await killed.exited();
      const inbox = new SqliteInbox(effects);
      let handled = 0;
      let skipped = 0;
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: async (r) => {
          const ran = await inbox.run(group, r, (db) => {
            db.prepare('INSERT INTO effects (event_id) VALUES (?)').run(r.eventId);
          });
          if (ran) handled++;
          else skipped++;
        },
      });
      await eventually('the rest after the crash', () => handled >= 10, c.timeout);
      await sub.close();
      const count = inbox.db
        .prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS d FROM effects')
        .get() as {
        n: number;
        d: number;
      };
      inbox.close();
      console.log(`chaos: with the inbox, the crash replayed ${skipped} records and 0 effects`);
      expect(count).toEqual({ n: 130, d: 130 });
      expect(handled).toBe(10);
    } finally {
      await dir.remove();
    }
  });

  it('dead-letters a record that kills its consumer, after maxCrashes deaths, and goes on', async () => {
    const bus = await c.open();
    const { topic, group } = await c.fresh(bus);
    const dir = await tempDir('edgefl-chaos-');
    try {
      const effects = join(dir.path, 'effects.log');
      await bus.publish([
        { topic, key: 'k', value: Buffer.from('fine-1') },
        { topic, key: 'k', value: Buffer.from('killer'), eventId: 'ev-killer' },
        { topic, key: 'k', value: Buffer.from('fine-2'), eventId: 'ev-after' },
      ]);
      const options = { maxCrashes: 2 };
      let deaths = 0;
      for (; deaths < 4 && !lines(effects).includes('ev-after'); deaths++) {
        const p = await startChildConsumer(
          c.target().childConfig(),
          group,
          topic,
          child('kill-on', 'killer', effects, options),
        );
        await Promise.race([
          p.exited(),
          eventually('the record after the killer', () => lines(effects).includes('ev-after'), c.timeout),
        ]);
        await p.kill();
      }
      expect(lines(effects)).toContain('ev-after');
      // Three deaths: the first counts against the start of its progress window (fine-1), the next two against the
      // killer, whose count then reaches maxCrashes; the fourth run dead-letters it and goes on.
      expect(deaths).toBe(4);
      const letters = await readDeadLetters(bus, group, topic, c.timeout);
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({
        eventId: 'ev-killer',
        reason: 'crashed its consumer 2 times',
        errorCode: 'consumer_crashed',
      });
    } finally {
      await dir.remove();
    }
  });

  it('moves the other partitions while one keeps failing and backing off', async () => {
    const bus = await c.open();
    const { topic, group } = await c.fresh(bus);
    const keyOn = (p: number) =>
      Array.from({ length: 200 }, (_, i) => `k${i}`).find((k) => partitionForKey(k, c.partitions) === p)!;
    const stuck = keyOn(0);
    const got = new Set<string>();
    const sub = await bus.subscribe({
      group,
      topics: [topic],
      fromBeginning: true,
      maxAttempts: 1_000,
      backoff: { initialMs: 200, maxMs: 200, factor: 1 },
      handler: (r: BusRecord) => {
        if (r.key === stuck) throw new Error('always fails');
        got.add(r.value.toString());
      },
    });
    await bus.publish([{ topic, key: stuck, value: Buffer.from('stuck') }]);
    const others = Array.from({ length: c.partitions - 1 }, (_, i) => keyOn(i + 1));
    for (let round = 0; round < 5; round++) {
      await bus.publish(others.map((key) => ({ topic, key, value: Buffer.from(`${key}:${round}`) })));
      await eventually(
        `round ${round} on the healthy partitions`,
        () => others.every((k) => got.has(`${k}:${round}`)),
        c.timeout,
      );
    }
    await sub.close();
  });

  it('reassigns the partitions of a SIGKILLed member (time-to-takeover printed, not asserted)', async () => {
    const bus = await c.open();
    const { topic, group } = await c.fresh(bus);
    const hung = await startChildConsumer(c.target().childConfig(), group, topic);
    try {
      await bus.publish([{ topic, key: 'held', value: Buffer.from('held'), eventId: 'ev-held' }]);
      await hung.waitFor('got ev-held', c.timeout);
      const got: BusRecord[] = [];
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.push(r),
      });
      const killedAt = Date.now();
      await hung.kill();
      await eventually(
        'the held record taken over',
        () => got.some((r) => r.eventId === 'ev-held'),
        c.timeout,
      );
      console.log(`chaos: time-to-takeover after SIGKILL ${Date.now() - killedAt} ms`);
      await sub.close();
    } finally {
      await hung.kill();
    }
  });
}
