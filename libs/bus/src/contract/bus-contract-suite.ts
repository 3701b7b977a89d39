// One contract suite for every EventBus adapter. Each adapter's spec calls runBusContractSuite with a factory; the
// embedded adapter runs it on every run, Kafka wherever a broker is reachable.
import { randomUUID } from 'node:crypto';
import { eventually } from '@edgefl/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BusConfig } from '../config.js';
import { readDeadLetters } from './dead-letters.js';
import { partitionForKey } from '../partitioner.js';
import type { BusRecord, EventBus, Subscription } from '../port.js';
import { chaosScenarios } from './chaos-scenarios.js';
import { startChildConsumer } from './crash.js';

export interface BusContractTarget {
  /** A new bus client on the shared backing store (the same file, the same cluster). */
  open(): Promise<EventBus>;
  /** The config a child process passes to createBus() to reach the same store (crash test). */
  childConfig(): BusConfig;
  /** Deletes the topics the suite created (a shared broker keeps them otherwise); absent where nothing remains. */
  deleteTopics?(names: readonly string[]): Promise<void>;
  cleanup(): Promise<void>;
}

export interface BusContractOptions {
  /** Skip the whole suite (the caller has announced why). */
  skip?: boolean;
  /** Upper bound for any single wait (default 60 s; Kafka rebalances are slow). */
  timeoutMs?: number;
}

const PARTITIONS = 4;

const text = (r: BusRecord) => r.value.toString('utf8');

export function runBusContractSuite(
  name: string,
  factory: () => Promise<BusContractTarget>,
  options: BusContractOptions = {},
): void {
  const timeout = options.timeoutMs ?? 60_000;
  describe.skipIf(options.skip === true)(`EventBus contract: ${name}`, () => {
    let target: BusContractTarget;
    const opened: EventBus[] = [];
    const open = async () => {
      const bus = await target.open();
      opened.push(bus);
      return bus;
    };
    const created: string[] = [];
    /** A fresh topic (and group names) per test, so tests never see each other's records. */
    const fresh = async (bus: EventBus, name = 'events') => {
      const id = randomUUID().slice(0, 8);
      const topic = `contract.${id}.${name}.v1`;
      created.push(topic);
      await bus.ensureTopics([{ name: topic, partitions: PARTITIONS, retentionMs: 3_600_000 }]);
      return { topic, group: `contract-${id}` };
    };

    beforeAll(async () => {
      target = await factory();
    });
    afterAll(async () => {
      await Promise.allSettled(opened.map((b) => b.close()));
      if (target?.deleteTopics) await target.deleteTopics(created);
      await target?.cleanup();
    });

    it("refuses to change an existing topic's partition count, and keeps the topic as it was", async () => {
      const bus = await open();
      const { topic } = await fresh(bus);
      await bus.ensureTopics([{ name: topic, partitions: PARTITIONS, retentionMs: 3_600_000 }]); // a reboot: fine
      for (const partitions of [PARTITIONS + 2, PARTITIONS - 1])
        await expect(bus.ensureTopics([{ name: topic, partitions }])).rejects.toMatchObject({
          code: 'partition_count_mismatch',
          message: expect.stringContaining(`topic ${topic} has ${PARTITIONS} partition(s)`),
        });
      // keys still land where they did: the count is unchanged
      const [placed] = await bus.publish([{ topic, key: 'device-a', value: Buffer.from('x') }]);
      expect(placed!.partition).toBe(partitionForKey('device-a', PARTITIONS));
    });

    it("keeps per-key order and places keys with Kafka's default partitioner", async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const keys = ['device-a', 'device-b', 'device-c', 'round-7'];
      const published = [];
      for (let i = 0; i < 40; i++) {
        published.push(
          ...(await bus.publish(keys.map((key) => ({ topic, key, value: Buffer.from(`${key}:${i}`) })))),
        );
      }
      published.forEach((p, i) =>
        expect(p.partition).toBe(partitionForKey(keys[i % keys.length]!, PARTITIONS)),
      );
      const seen = new Map<string, number[]>();
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => {
          const [key, n] = text(r).split(':');
          expect(r.key).toBe(key);
          expect(r.partition).toBe(partitionForKey(key!, PARTITIONS));
          seen.set(key!, [...(seen.get(key!) ?? []), Number(n)]);
        },
      });
      await eventually(
        'all 160 records',
        () => [...seen.values()].reduce((a, s) => a + s.length, 0) >= 160,
        timeout,
      );
      await sub.close();
      for (const key of keys) expect(seen.get(key)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    });

    it('delivers records with their headers, event id, offset and timestamp', async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const [placed] = await bus.publish([
        {
          topic,
          key: 'k',
          value: Buffer.from([0, 1, 255]),
          tenant: 't1',
          traceId: 'tr-1',
          headers: { extra: 'x' },
          eventId: 'ev-1',
        },
      ]);
      const got: BusRecord[] = [];
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.push(r),
      });
      await eventually('the record', () => got.length === 1, timeout);
      await sub.close();
      const r = got[0]!;
      expect([...r.value]).toEqual([0, 1, 255]);
      expect(r.headers).toMatchObject({ tenant: 't1', 'trace-id': 'tr-1', 'event-id': 'ev-1', extra: 'x' });
      expect(r.eventId).toBe('ev-1');
      expect(r.partition).toBe(placed!.partition);
      if (placed!.offset !== null) expect(r.offset).toBe(placed!.offset);
      expect(r.attempt).toBe(1);
      expect(r.timestamp).toBeGreaterThan(Date.now() - 3_600_000);
    });

    it('splits partitions between two members of a group, and one takes over when the other leaves', async () => {
      const [busA, busB] = [await open(), await open()];
      const { topic, group } = await fresh(busA);
      const got = { a: [] as BusRecord[], b: [] as BusRecord[] };
      const subA = await busA.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.a.push(r),
      });
      const subB = await busB.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.b.push(r),
      });
      const keys = Array.from({ length: 32 }, (_, i) => `entity-${i}`);
      let round = 0;
      const publishRound = async () => {
        round++;
        await busA.publish(keys.map((key) => ({ topic, key, value: Buffer.from(`${round}:${key}`) })));
        return round;
      };
      // Publish rounds until both members receive records (the group has settled), then one more round.
      await eventually(
        'both members receiving',
        () => {
          void publishRound();
          return got.a.length > 0 && got.b.length > 0;
        },
        timeout,
      );
      await new Promise((r) => setTimeout(r, 200));
      const settled = await publishRound();
      const inRound = (rs: BusRecord[], n: number) => rs.filter((r) => text(r).startsWith(`${n}:`));
      await eventually(
        'the settled round',
        () => inRound([...got.a, ...got.b], settled).length >= keys.length,
        timeout,
      );
      const partsA = new Set(inRound(got.a, settled).map((r) => r.partition));
      const partsB = new Set(inRound(got.b, settled).map((r) => r.partition));
      expect(partsA.size).toBeGreaterThan(0);
      expect(partsB.size).toBeGreaterThan(0);
      expect([...partsA].filter((p) => partsB.has(p))).toEqual([]);
      // Every record of every round reached the group.
      for (let n = 1; n <= settled; n++) {
        await eventually(
          `round ${n} complete`,
          () => new Set(inRound([...got.a, ...got.b], n).map(text)).size === keys.length,
          timeout,
        );
      }
      await subB.close();
      const after = await publishRound();
      await eventually(
        'A takes over every partition',
        () => inRound(got.a, after).length === keys.length,
        timeout,
      );
      expect(new Set(inRound(got.a, after).map((r) => r.partition)).size).toBe(PARTITIONS);
      await subA.close();
    });

    it('hands every record of every topic to a group whose subscriptions are each on their own topic, over several members', async () => {
      // The registry's shape: several handlers in one group, each on its own topic, in several processes (here
      // several bus clients, each its own member set), some on the same topic and some not.
      const [busA, busB, busC] = [await open(), await open(), await open()];
      const topics = [
        (await fresh(busA, 'ota')).topic,
        (await fresh(busA, 'round')).topic,
        (await fresh(busA, 'health')).topic,
      ];
      const group = `contract-${randomUUID().slice(0, 8)}-shared`;
      const [ota, round, health] = topics as [string, string, string];
      const seen = new Map<string, Set<string>>(topics.map((t) => [t, new Set<string>()]));
      const wrong: string[] = [];
      const handlerFor = (topic: string) => (r: BusRecord) => {
        if (r.topic !== topic) wrong.push(`${topic} handler got ${r.topic}`);
        seen.get(r.topic)?.add(text(r));
      };
      const subscribe = (bus: EventBus, topic: string) =>
        bus.subscribe({ group, topics: [topic], fromBeginning: true, handler: handlerFor(topic) });
      const subs = [
        ...(await Promise.all([subscribe(busA, ota), subscribe(busA, round), subscribe(busA, health)])),
        ...(await Promise.all([subscribe(busB, health), subscribe(busB, ota)])),
        await subscribe(busC, round),
      ];
      const perTopic = 24;
      for (const topic of topics) {
        await busB.publish(
          Array.from({ length: perTopic }, (_, i) => ({
            topic,
            key: `entity-${i % 7}`,
            value: Buffer.from(`${topic}:${i}`),
          })),
        );
      }
      await eventually(
        'every record of every topic',
        () => topics.every((t) => seen.get(t)!.size === perTopic),
        timeout,
      );
      await Promise.all(subs.map((s) => s.close()));
      expect(wrong).toEqual([]);
      for (const topic of topics)
        expect([...seen.get(topic)!].sort()).toEqual(
          Array.from({ length: perTopic }, (_, i) => `${topic}:${i}`).sort(),
        );
    });

    it('redelivers a record whose consumer crashed (SIGKILL) mid-handler, before commit', async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const child = await startChildConsumer(target.childConfig(), group, topic);
      try {
        await bus.publish([{ topic, key: 'crash-key', value: Buffer.from('precious'), eventId: 'ev-crash' }]);
        await child.waitFor('got ev-crash', timeout);
      } finally {
        await child.kill();
      }
      const got: BusRecord[] = [];
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.push(r),
      });
      await eventually(
        'redelivery after the crash',
        () => got.some((r) => r.eventId === 'ev-crash'),
        timeout,
      );
      await sub.close();
      expect(text(got.find((r) => r.eventId === 'ev-crash')!)).toBe('precious');
    });

    it('loses nothing across a restart and resumes from the committed offset', async () => {
      const first = await open();
      const { topic, group } = await fresh(first);
      await first.publish(
        Array.from({ length: 10 }, (_, i) => ({ topic, key: `k${i % 3}`, value: Buffer.from(`old-${i}`) })),
      );
      await first.close();
      const second = await open();
      const gotOld: string[] = [];
      const sub = await second.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void gotOld.push(text(r)),
      });
      await eventually('the 10 records after restart', () => gotOld.length >= 10, timeout);
      await sub.close();
      await second.close();
      expect(new Set(gotOld).size).toBe(10);
      const third = await open();
      await third.publish(
        Array.from({ length: 5 }, (_, i) => ({ topic, key: `k${i % 3}`, value: Buffer.from(`new-${i}`) })),
      );
      await third.close();
      const fourth = await open();
      const gotNew: string[] = [];
      const sub2 = await fourth.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void gotNew.push(text(r)),
      });
      await eventually(
        'the 5 new records',
        () => gotNew.filter((v) => v.startsWith('new-')).length >= 5,
        timeout,
      );
      await sub2.close();
      expect(gotNew.filter((v) => v.startsWith('old-'))).toEqual([]);
    });

    it('retries with backoff and dead-letters with the reason after maxAttempts, then keeps going', async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const attempts: number[] = [];
      const good: string[] = [];
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        maxAttempts: 3,
        backoff: { initialMs: 5, maxMs: 20, factor: 2 },
        handler: (r) => {
          if (text(r) === 'poison') {
            attempts.push(r.attempt);
            throw new Error('cannot digest poison');
          }
          good.push(text(r));
        },
      });
      await bus.publish([
        { topic, key: 'same', value: Buffer.from('poison'), eventId: 'ev-poison', tenant: 'acme' },
        { topic, key: 'same', value: Buffer.from('fine') },
      ]);
      await eventually('the record after the poison one', () => good.includes('fine'), timeout);
      await sub.close();
      expect(attempts).toEqual([1, 2, 3]);
      const letters = await readDeadLetters(bus, group, topic, timeout);
      const letter = letters[0]!;
      expect(letter).toMatchObject({
        eventId: 'ev-poison',
        tenant: 'acme',
        originalTopic: topic,
        consumerGroup: group,
        attempts: 3,
        errorCode: 'handler_failed',
        key: 'same',
      });
      expect(letter.reason).toContain('cannot digest poison');
      expect(letter.value.toString()).toBe('poison');
    });

    it('handles a duplicate event id once when dedupe is on', async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const effects = new Map<string, number>();
      const sub = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        dedupe: true,
        handler: (r) => void effects.set(r.eventId, (effects.get(r.eventId) ?? 0) + 1),
      });
      await bus.publish([{ topic, key: 'dev-1', value: Buffer.from('u1'), eventId: 'update-1' }]);
      await eventually('the first copy', () => effects.has('update-1'), timeout);
      await bus.publish([{ topic, key: 'dev-1', value: Buffer.from('u1 again'), eventId: 'update-1' }]);
      await bus.publish([
        { topic, key: 'dev-1', value: Buffer.from('u1 thrice'), eventId: 'update-1' },
        { topic, key: 'dev-1', value: Buffer.from('u2'), eventId: 'update-2' },
      ]);
      await eventually('the sentinel after the duplicates', () => effects.has('update-2'), timeout);
      await sub.close();
      // A new member of the group (as after a restart) still knows update-1 was processed.
      const again = await open();
      const sub2 = await again.subscribe({
        group: `${group}`,
        topics: [topic],
        fromBeginning: true,
        dedupe: true,
        handler: (r) => void effects.set(r.eventId, (effects.get(r.eventId) ?? 0) + 1),
      });
      await again.publish([
        { topic, key: 'dev-1', value: Buffer.from('u1 replayed'), eventId: 'update-1' },
        { topic, key: 'dev-1', value: Buffer.from('u3'), eventId: 'update-3' },
      ]);
      await eventually('the sentinel after the replay', () => effects.has('update-3'), timeout);
      await sub2.close();
      expect(Object.fromEntries(effects)).toEqual({ 'update-1': 1, 'update-2': 1, 'update-3': 1 });
    });

    chaosScenarios({ target: () => target, open, fresh, timeout, partitions: PARTITIONS });

    it('pauses and resumes a subscription without losing records', async () => {
      const bus = await open();
      const { topic, group } = await fresh(bus);
      const got: string[] = [];
      const sub: Subscription = await bus.subscribe({
        group,
        topics: [topic],
        fromBeginning: true,
        handler: (r) => void got.push(text(r)),
      });
      await bus.publish([{ topic, key: 'p', value: Buffer.from('before') }]);
      await eventually('the record before pause', () => got.includes('before'), timeout);
      sub.pause();
      expect(sub.paused).toBe(true);
      await new Promise((r) => setTimeout(r, 300)); // let a stray in-flight fetch finish
      const countAtPause = got.length;
      await bus.publish([{ topic, key: 'p', value: Buffer.from('during') }]);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(got.length).toBe(countAtPause);
      sub.resume();
      await eventually('the record published while paused', () => got.includes('during'), timeout);
      await sub.close();
      expect(got.filter((v) => v === 'during')).toHaveLength(1);
    });
  });
}
