import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { eventually, tempDir } from '@edgefl/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusError, type BusRecord } from '../port.js';
import { partitionForKey } from '../partitioner.js';
import { ProcessedEventStore } from '../processed-events.js';
import { EmbeddedBus } from './embedded-bus.js';

/**
 * Grows a topic the way an operator would have to (ensureTopics refuses to change a count): straight in the store.
 * The consumers must still follow it, as they follow a Kafka topic an operator grew.
 */
function growByHand(topic: string, partitions: number): void {
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    db.prepare('UPDATE bus_topics SET partitions = ? WHERE name = ?').run(partitions, topic);
    for (let p = 0; p < partitions; p++)
      db.prepare('INSERT OR IGNORE INTO bus_partitions (topic, part, next_off) VALUES (?, ?, 0)').run(
        topic,
        p,
      );
  } finally {
    db.close();
  }
}

let dir: { path: string; remove: () => Promise<void> };
let path: string;
const buses: EmbeddedBus[] = [];
const open = (extra: Partial<ConstructorParameters<typeof EmbeddedBus>[0]> = {}) => {
  const bus = new EmbeddedBus({
    path,
    heartbeatIntervalMs: 200,
    sessionTimeoutMs: 1_500,
    pollIntervalMs: 20,
    retentionCheckIntervalMs: 0,
    ...extra,
  });
  buses.push(bus);
  return bus;
};

beforeEach(async () => {
  dir = await tempDir('edgefl-bus-');
  path = join(dir.path, 'bus.sqlite');
});
afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.close()));
  await dir.remove();
});

describe('EmbeddedBus input checks', () => {
  it('rejects bad records with a typed error and stays usable', async () => {
    const bus = open();
    const bad: unknown[] = [
      { topic: 'bad topic!', key: 'k', value: Buffer.from('x') },
      { topic: 't', key: 42, value: Buffer.from('x') },
      { topic: 't', key: 'k', value: 'not bytes' },
      { topic: 't', key: 'k', value: Buffer.from('x'), headers: { h: 1 } },
      { topic: 't', key: 'k', value: Buffer.from('x'), eventId: '' },
      null,
    ];
    for (const record of bad) {
      await expect(bus.publish([record as never])).rejects.toBeInstanceOf(BusError);
    }
    await expect(bus.publish('nope' as never)).rejects.toMatchObject({ code: 'invalid_record' });
    await expect(bus.subscribe({ group: '', topics: ['t'], handler: () => {} })).rejects.toMatchObject({
      code: 'invalid_subscription',
    });
    await expect(bus.subscribe({ group: 'g', topics: ['t'] })).rejects.toMatchObject({
      code: 'invalid_subscription',
    });
    await expect(bus.ensureTopics([{ name: 't', partitions: 0 }])).rejects.toMatchObject({
      code: 'invalid_topic',
    });
    const [ok] = await bus.publish([{ topic: 't', key: 'k', value: Buffer.from('fine') }]);
    expect(ok).toMatchObject({ topic: 't', offset: '0' });
    await bus.close();
    await expect(bus.publish([{ topic: 't', key: 'k', value: Buffer.from('late') }])).rejects.toMatchObject({
      code: 'closed',
    });
  });

  it('refuses an unknown topic when auto-creation is off', async () => {
    const bus = open({ autoCreateTopics: false });
    await expect(
      bus.publish([{ topic: 'nowhere', key: null, value: Buffer.from('x') }]),
    ).rejects.toMatchObject({ code: 'unknown_topic' });
  });

  it('groups concurrent publish calls and numbers offsets densely per partition', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'dense', partitions: 1 }]);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        bus.publish([{ topic: 'dense', key: `k${i}`, value: Buffer.from(String(i)) }]),
      ),
    );
    expect(results.map((r) => r[0]!.offset).sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 50 }, (_, i) => String(i)),
    );
    expect(await bus.consumerLag('nobody', ['dense'])).toEqual([{ topic: 'dense', partition: 0, lag: 50 }]);
  });
});

describe('EmbeddedBus retention', () => {
  it('trims records older than retention, but never what an active group has not committed', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'short', partitions: 1, retentionMs: 60_000 }]);
    await bus.publish(
      Array.from({ length: 6 }, (_, i) => ({ topic: 'short', key: 'k', value: Buffer.from(`r${i}`) })),
    );
    // An active group that has handled the first 3 records and is stuck on the 4th.
    const seen: string[] = [];
    const sub = await bus.subscribe({
      group: 'slow',
      topics: ['short'],
      fromBeginning: true,
      maxBatchSize: 1,
      maxAttempts: 1_000,
      backoff: { initialMs: 50, maxMs: 50, factor: 1 },
      handler: (r) => {
        if (r.value.toString() === 'r3') throw new Error('stuck');
        seen.push(r.value.toString());
      },
    });
    await eventually('3 records handled', () => seen.length === 3, 10_000);
    let lag = -1;
    await eventually(
      'offset 3 committed',
      () => (void bus.consumerLag('slow', ['short']).then((l) => (lag = l[0]!.lag)), lag === 3),
      10_000,
    );
    // Younger than retention: nothing goes.
    expect(await bus.trimNow(Date.now())).toBe(0);
    // Everything is older than retention now: only the committed prefix may go.
    expect(await bus.trimNow(Date.now() + 120_000)).toBe(3);
    await sub.close();
    // The group is no longer active: the rest can go too.
    expect(await bus.trimNow(Date.now() + 120_000)).toBe(3);
    // Offsets keep growing after a trim (never reused).
    const [next] = await bus.publish([{ topic: 'short', key: 'k', value: Buffer.from('r6') }]);
    expect(next!.offset).toBe('6');
  });

  it('compacts a compact topic to the newest record per key', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'latest', partitions: 1, cleanupPolicy: 'compact' }]);
    await bus.publish(
      ['a', 'b', 'a', 'a', 'b', 'c'].map((key, i) => ({
        topic: 'latest',
        key,
        value: Buffer.from(`${key}${i}`),
      })),
    );
    expect(await bus.trimNow()).toBe(3);
    const got: string[] = [];
    const sub = await bus.subscribe({
      group: 'reader',
      topics: ['latest'],
      fromBeginning: true,
      handler: (r) => void got.push(r.value.toString()),
    });
    await eventually('compacted records', () => got.length === 3, 10_000);
    await sub.close();
    expect(got).toEqual(['a3', 'b4', 'c5']);
  });
});

describe('EmbeddedBus shared by several processes', () => {
  it('takes concurrent writes from two processes and a consumer here sees them all, in order per key', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'shared', partitions: 3 }]);
    const got: BusRecord[] = [];
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['shared'],
      fromBeginning: true,
      handler: (r) => void got.push(r),
    });
    const hooks = fileURLToPath(new URL('../contract/ts-hooks.mjs', import.meta.url));
    const child = fileURLToPath(new URL('./test-support/publish-child.ts', import.meta.url));
    const run = (who: string) =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(
          process.execPath,
          ['--no-warnings', '--import', hooks, child, path, 'shared', who, '300'],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let err = '';
        p.stderr.on('data', (d: Buffer) => (err += d.toString()));
        p.on('exit', (code) =>
          code === 0 ? resolve() : reject(new Error(`publisher ${who} failed (${code}): ${err}`)),
        );
      });
    await Promise.all([run('p1'), run('p2')]);
    await eventually('600 records from two processes', () => got.length >= 600, 30_000);
    await sub.close();
    expect(got).toHaveLength(600);
    for (const key of ['p1-0', 'p1-1', 'p1-2', 'p1-3', 'p2-0', 'p2-1', 'p2-2', 'p2-3']) {
      const ns = got.filter((r) => r.key === key).map((r) => Number(r.value.toString().split(':')[1]));
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
      expect(ns).toHaveLength(75);
    }
  });
});

describe('ProcessedEventStore', () => {
  it('remembers per group, across reopen, bounded by count and age', async () => {
    const file = join(dir.path, 'processed.sqlite');
    const store = new ProcessedEventStore(file, {
      maxEntriesPerGroup: 3,
      maxAgeMs: 60_000,
      pruneEvery: 1_000_000,
    });
    store.markProcessed('g1', ['a', 'b']);
    expect(store.seen('g1', ['a', 'b', 'c'])).toEqual(new Set(['a', 'b']));
    expect(store.seen('g2', ['a'])).toEqual(new Set());
    store.close();
    const reopened = new ProcessedEventStore(file, {
      maxEntriesPerGroup: 3,
      maxAgeMs: 60_000,
      pruneEvery: 1_000_000,
    });
    expect(reopened.seen('g1', ['a'])).toEqual(new Set(['a']));
    reopened.markProcessed('g1', ['c', 'd', 'e']);
    reopened.prune();
    expect(reopened.seen('g1', ['a', 'b', 'c', 'd', 'e']).size).toBe(3);
    reopened.prune(Date.now() + 120_000);
    expect(reopened.seen('g1', ['c', 'd', 'e']).size).toBe(0);
    reopened.close();
  });
});

describe('EmbeddedBus consumer loop', () => {
  it('never delivers a partition twice at once when another partition of the member fails', async () => {
    // The dead-letter topic does not exist and cannot be created: dead-lettering on partition A fails, and the loop
    // retries. Partition B's handler is still in flight meanwhile and must not be started again.
    const bus = open({ autoCreateTopics: false });
    await bus.ensureTopics([{ name: 'two', partitions: 2 }]);
    const keyOn = (partition: number) =>
      Array.from({ length: 100 }, (_, i) => `k${i}`).find((k) => partitionForKey(k, 2) === partition)!;
    const [failing, slow] = [keyOn(0), keyOn(1)];
    let failures = 0;
    let slowCalls = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['two'],
      fromBeginning: true,
      maxAttempts: 1,
      handler: async (r) => {
        if (r.key === failing) {
          failures++;
          throw new Error('always');
        }
        slowCalls++;
        await gate;
      },
    });
    await bus.publish([
      { topic: 'two', key: failing, value: Buffer.from('a') },
      { topic: 'two', key: slow, value: Buffer.from('b') },
    ]);
    await eventually('the failing partition failed', () => failures >= 1 && slowCalls >= 1, 10_000);
    // Several error-retry periods of the loop (pollIntervalMs 20 → 100 ms each).
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(slowCalls).toBe(1);
    release();
    await sub.close();
    // The drain waited for the in-flight handler and committed it.
    expect((await bus.consumerLag('g', ['two'])).find((l) => l.partition === 1)?.lag).toBe(0);
  });

  it('closes once when close() is called twice at the same time', async () => {
    const bus = open();
    await bus.publish([{ topic: 't', key: 'k', value: Buffer.from('x') }]);
    await expect(Promise.all([bus.close(), bus.close()])).resolves.toEqual([undefined, undefined]);
  });

  it('refuses to grow a topic through ensureTopics (keys would move)', async () => {
    const bus = open();
    await bus.ensureTopics([{ name: 'fixed', partitions: 2 }]);
    await expect(bus.ensureTopics([{ name: 'fixed', partitions: 4 }])).rejects.toMatchObject({
      code: 'partition_count_mismatch',
    });
    const [placed] = await bus.publish([{ topic: 'fixed', key: 'k', value: Buffer.from('x') }]);
    expect(placed!.partition).toBe(partitionForKey('k', 2));
  });

  it('consumes partitions an operator added to a topic after this member joined', async () => {
    const consumerSide = open();
    await consumerSide.ensureTopics([{ name: 'grows', partitions: 2 }]);
    const got: BusRecord[] = [];
    const sub = await consumerSide.subscribe({
      group: 'g',
      topics: ['grows'],
      fromBeginning: true,
      handler: (r) => void got.push(r),
    });
    const other = open();
    growByHand('grows', 4);
    const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
    await other.publish(keys.map((key) => ({ topic: 'grows', key, value: Buffer.from(key) })));
    expect(keys.some((k) => partitionForKey(k, 4) >= 2)).toBe(true);
    await eventually('records on every partition', () => got.length === keys.length, 10_000);
    await sub.close();
  });

  it('places a key where the other processes do after an operator grew the topic', async () => {
    const stale = open();
    await stale.ensureTopics([{ name: 'grown', partitions: 2 }]);
    await stale.publish([{ topic: 'grown', key: 'warm', value: Buffer.from('x') }]); // caches 2 partitions
    growByHand('grown', 5);
    const other = open();
    const key = Array.from({ length: 100 }, (_, i) => `k${i}`).find(
      (k) => partitionForKey(k, 5) !== partitionForKey(k, 2),
    )!;
    const [fromOther] = await other.publish([{ topic: 'grown', key, value: Buffer.from('1') }]);
    const [fromStale] = await stale.publish([{ topic: 'grown', key, value: Buffer.from('2') }]);
    expect(fromStale!.partition).toBe(fromOther!.partition);
  });
  it('commits what was handled before a record whose dead letter cannot be written, and does not run it again', async () => {
    const bus = open({ autoCreateTopics: false });
    await bus.ensureTopics([{ name: 'one', partitions: 1 }]);
    const calls = new Map<string, number>();
    const sub = await bus.subscribe({
      group: 'g',
      topics: ['one'],
      fromBeginning: true,
      maxAttempts: 1,
      handler: (r) => {
        const v = r.value.toString();
        calls.set(v, (calls.get(v) ?? 0) + 1);
        if (v === 'poison') throw new Error('cannot handle');
      },
    });
    await bus.publish(
      ['a', 'b', 'poison', 'c'].map((v) => ({ topic: 'one', key: 'k', value: Buffer.from(v) })),
    );
    await eventually('the poison record retried', () => (calls.get('poison') ?? 0) >= 3, 10_000);
    await sub.close();
    expect([calls.get('a'), calls.get('b'), calls.get('c')]).toEqual([1, 1, undefined]);
    expect(await bus.consumerLag('g', ['one'])).toEqual([{ topic: 'one', partition: 0, lag: 2 }]);
  });
});
