// The embedded adapter under chaos (issue 10): a dead member's process is noticed at once, dead letters are written
// once, a zombie stops at once, a process holding the write lock freezes no other, the inbox in the bus file.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { eventually, tempDir } from '@edgefl/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startChildConsumer } from '../contract/crash.js';
import { decodeJsonDeadLetter } from '../dead-letter.js';
import { DEAD_LETTER_TOPIC, type BusRecord } from '../port.js';
import { EmbeddedBus, type EmbeddedBusOptions } from './embedded-bus.js';

let dir: { path: string; remove: () => Promise<void> };
let path: string;
const buses: EmbeddedBus[] = [];
const timings = {
  heartbeatIntervalMs: 200,
  sessionTimeoutMs: 1_500,
  pollIntervalMs: 20,
  retentionCheckIntervalMs: 0,
};
const open = (extra: Partial<EmbeddedBusOptions> = {}) => {
  const bus = new EmbeddedBus({ path, ...timings, ...extra });
  buses.push(bus);
  return bus;
};

beforeEach(async () => {
  dir = await tempDir('edgefl-bus-chaos-');
  path = join(dir.path, 'bus.sqlite');
});
afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.close()));
  await dir.remove();
});

describe('EmbeddedBus under chaos', () => {
  it('reassigns a SIGKILLed member’s partitions long before its session would expire', async () => {
    const long = { heartbeatIntervalMs: 200, sessionTimeoutMs: 120_000, pollIntervalMs: 20 };
    const bus = open(long);
    await bus.ensureTopics([{ name: 'held', partitions: 2 }]);
    const hung = await startChildConsumer({ adapter: 'embedded', path, ...long }, 'g', 'held');
    try {
      await bus.publish([{ topic: 'held', key: 'k', value: Buffer.from('x'), eventId: 'ev-held' }]);
      await hung.waitFor('got ev-held', 30_000);
      const got: BusRecord[] = [];
      const sub = await bus.subscribe({ group: 'g', topics: ['held'], handler: (r) => void got.push(r) });
      await hung.kill();
      // An upper bound far below the 120 s session: only the dead process check can meet it.
      await eventually('the held record taken over', () => got.some((r) => r.eventId === 'ev-held'), 30_000);
      await sub.close();
    } finally {
      await hung.kill();
    }
  });

  it('writes a dead letter once: with the offset, refused together when the lease is gone', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'one', partitions: 1 }]);
    let calls = 0;
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['one'],
      fromBeginning: true,
      maxAttempts: 1,
      handler: () => {
        // The first time, the partition changes hands before the commit (a member that lost its lease).
        if (++calls === 1)
          bus.store.db.prepare("UPDATE bus_leases SET member = 'thief' WHERE grp = 'g'").run();
        throw new Error('poison');
      },
    });
    await bus.publish([{ topic: 'one', key: 'k', value: Buffer.from('p'), eventId: 'ev-poison' }]);
    let lag = -1;
    await eventually(
      'the poison record committed',
      () => (void bus.consumerLag('g', ['one']).then((l) => (lag = l[0]!.lag)), lag === 0),
      20_000,
    );
    await sub.close();
    expect(calls).toBe(2);
    // Counted in the log itself: a reader would fold two copies of one dead letter (same deterministic event id).
    const letters = bus.store.db
      .prepare('SELECT val FROM bus_records WHERE topic = ?')
      .all(DEAD_LETTER_TOPIC)
      .map((row) => decodeJsonDeadLetter(Buffer.from((row as { val: Uint8Array }).val)).eventId);
    expect(letters).toEqual(['ev-poison']);
  });

  it('stops a zombie before its next record once a session passed without a heartbeat', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'z', partitions: 1 }]);
    const leaseHolder = () =>
      (
        bus.store.db.prepare("SELECT member FROM bus_leases WHERE grp = 'g'").get() as
          { member: string } | undefined
      )?.member;
    let zombieCalls = 0;
    const handled = new Set<string>();
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['z'],
      fromBeginning: true,
      commitEvery: 1_000,
      handler: (r) => {
        if (leaseHolder() === 'thief') zombieCalls++;
        if (r.value.toString() === '0' && !handled.has('0')) {
          // Frozen past the session (a synchronous handler: no heartbeat runs), then another member took over.
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, timings.sessionTimeoutMs + 300);
          bus.store.db.prepare("UPDATE bus_leases SET member = 'thief' WHERE grp = 'g'").run();
        }
        handled.add(r.value.toString());
      },
    });
    await bus.publish(
      Array.from({ length: 10 }, (_, i) => ({ topic: 'z', key: 'k', value: Buffer.from(String(i)) })),
    );
    // The thief is no member: the next rebalance frees its lease, and this member goes on from the committed offset.
    await eventually('all records handled', () => handled.size === 10, 20_000);
    await sub.close();
    expect(zombieCalls).toBe(0);
  });

  it('keeps the event loop serving while another process holds the write lock, and counts the waits', async () => {
    let lockWaits = 0;
    const bus = open({ sessionTimeoutMs: 20_000, observer: { lockWait: () => lockWaits++ } });
    await bus.ensureTopics([{ name: 'w', partitions: 1 }]);
    const holder = spawn(
      process.execPath,
      [
        '--no-warnings',
        '-e',
        `const { DatabaseSync } = require('node:sqlite');
         const db = new DatabaseSync(process.argv[1]);
         db.exec('BEGIN IMMEDIATE');
         db.exec("INSERT INTO bus_topics (name, partitions, retention_ms, cleanup_policy) VALUES ('held', 1, NULL, 'delete')");
         process.stdout.write('locked\\n');
         setInterval(() => {}, 1000);`,
        path,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) =>
        holder.stdout.on('data', (d: Buffer) => d.includes('locked') && resolve()),
      );
      let settled = false;
      const published = bus
        .publish([{ topic: 'w', key: 'k', value: Buffer.from('x') }])
        .finally(() => (settled = true));
      await new Promise((r) => setTimeout(r, 100)); // a timer of this process runs while the publish waits
      expect(settled).toBe(false);
      expect(lockWaits).toBeGreaterThan(0);
      holder.kill('SIGKILL');
      await expect(published).resolves.toHaveLength(1);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('commits the offset in the inbox transaction with the effects in the bus file', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'in', partitions: 1 }]);
    bus.store.db.exec('CREATE TABLE my_effects (event_id TEXT NOT NULL)');
    const inbox = bus.inbox();
    const offsetsSeen: number[] = [];
    let ran = 0;
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['in'],
      fromBeginning: true,
      commitEvery: 1_000,
      handler: async (r) => {
        if (
          await inbox.run('g', r, (db) =>
            db.prepare('INSERT INTO my_effects (event_id) VALUES (?)').run(r.eventId),
          )
        )
          ran++;
        const row = bus.store.db.prepare("SELECT committed FROM bus_offsets WHERE grp = 'g'").get() as {
          committed: number;
        };
        offsetsSeen.push(row.committed);
      },
    });
    await bus.publish([
      { topic: 'in', key: 'k', value: Buffer.from('a'), eventId: 'e1' },
      { topic: 'in', key: 'k', value: Buffer.from('b'), eventId: 'e2' },
    ]);
    await eventually('two records', () => offsetsSeen.length === 2, 10_000);
    // A replay of e1 (published again, as a producer retry would): the inbox skips its effects.
    await bus.publish([{ topic: 'in', key: 'k', value: Buffer.from('a again'), eventId: 'e1' }]);
    await eventually('three records', () => offsetsSeen.length === 3, 10_000);
    await sub.close();
    // The offset moved with each effect, not at the end of the window; the duplicate ran no effect.
    expect(offsetsSeen).toEqual([1, 2, 2]);
    expect(ran).toBe(2);
    expect(bus.store.db.prepare('SELECT COUNT(*) AS n FROM my_effects').get()).toEqual({ n: 2 });
  });
});
