// The Kafka consumer design, pinned against a fake kafkajs client (test-support/fake-kafka.ts): which consumers
// exist, what each subscribes, what the assigner hands members with different topic sets, readiness on unowned
// partitions, restarts after a crash.
import { eventually } from '@edgefl/testing';
import kafkajs from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusObserver, BusRecord } from '../port.js';
import { KafkaBus, type KafkaBusOptions } from './kafka-bus.js';
import { planAssignment, SUBSCRIPTION_ASSIGNER_NAME } from './subscription-assigner.js';
import { FakeKafkaCluster } from './test-support/fake-kafka.js';

const OTA = 'edgefl.ota.status.v1';
const ROUND = 'edgefl.fl.round.v1';
const HEALTH = 'edgefl.rollout.health.v1';

const quietLogger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
};
const buses: KafkaBus[] = [];
function bus(cluster: FakeKafkaCluster, name: string, extra: Partial<KafkaBusOptions> = {}): KafkaBus {
  const b = new KafkaBus({
    brokers: ['fake:9092'],
    clientId: name,
    kafka: cluster.client(name),
    logger: quietLogger,
    joinTimeoutMs: 5_000,
    ...extra,
  });
  buses.push(b);
  return b;
}
afterEach(async () => {
  await Promise.allSettled(buses.splice(0).map((b) => b.close()));
});

function registryCluster(): FakeKafkaCluster {
  return new FakeKafkaCluster().topic(OTA, 12).topic(ROUND, 6).topic(HEALTH, 3);
}

/** Every partition of `topic` and the member that owns it, over all members of the group. */
function owners(cluster: FakeKafkaCluster, group: string, topic: string) {
  return Array.from({ length: cluster.topics.get(topic)!.partitions }, (_, p) =>
    cluster.owner(group, topic, p),
  );
}

describe('Kafka consumers: one per group and bus', () => {
  it('runs one kafkajs consumer for three subscriptions of one group (the registry), subscribed to all three topics', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'registry');
    const handler = () => undefined;
    await Promise.all([
      b.subscribe({ group: 'registry', topics: [OTA], handler }),
      b.subscribe({ group: 'registry', topics: [ROUND], handler }),
      b.subscribe({ group: 'registry', topics: [HEALTH], handler }),
    ]);
    const live = cluster.consumers.filter((c) => !c.disconnected);
    expect(live).toHaveLength(1);
    expect(live[0]!.config.groupId).toBe('registry');
    expect([...live[0]!.subscribed].sort()).toEqual([ROUND, OTA, HEALTH].sort());
    // the subscription-aware assigner is the first protocol it offers
    expect(live[0]!.assigners.map((a) => a.name)).toEqual([SUBSCRIPTION_ASSIGNER_NAME, 'RoundRobinAssigner']);
    for (const topic of [OTA, ROUND, HEALTH])
      expect(owners(cluster, 'registry', topic).every((o) => o === live[0])).toBe(true);
    // subscribe() calls in the same tick share one start
    expect(cluster.consumers).toHaveLength(1);
  });

  it('restarts the consumer with the union of topics when a subscription joins later, and keeps groups apart', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'p1');
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    await b.subscribe({ group: 'registry', topics: [ROUND], handler: () => undefined });
    await b.subscribe({ group: 'telemetry', topics: [OTA], handler: () => undefined });
    const live = cluster.consumers.filter((c) => !c.disconnected);
    expect(live.map((c) => [c.config.groupId, [...c.subscribed].sort()])).toEqual([
      ['registry', [ROUND, OTA].sort()],
      ['telemetry', [OTA]],
    ]);
    expect(cluster.consumers.filter((c) => c.disconnected)).toHaveLength(1); // the registry's first consumer
    expect(b.groupConsumer('registry')!.topics.sort()).toEqual([ROUND, OTA].sort());
  });

  it("leaves assignment to the client with partitionAssigners: 'client' (a client that assigns natively)", async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'p1', { partitionAssigners: 'client' });
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    expect(cluster.consumers[0]!.config.partitionAssigners).toBeUndefined();
  });

  it('lets the running batch finish and commit before a restart for a new subscription', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'p1');
    let release: (() => void) | null = null;
    const handled: string[] = [];
    const offsets: string[] = [];
    await b.subscribe({
      group: 'registry',
      topics: [OTA],
      handler: async (r) => {
        if (r.value.toString() === 'slow') await new Promise<void>((resolve) => (release = resolve));
        handled.push(r.value.toString());
        offsets.push(r.offset);
      },
    });
    const first = cluster.consumers[0]!;
    const delivering = cluster.deliver('registry', OTA, 0, ['slow', 'next']);
    await eventually('the slow handler running', () => release !== null);
    const joining = b.subscribe({ group: 'registry', topics: [ROUND], handler: () => undefined });
    await eventually('the restart waiting for the batch', () => first.disconnected);
    expect(cluster.consumers).toHaveLength(1); // no new consumer while the batch runs
    release!();
    await Promise.all([delivering, joining]);
    // the batch stopped between records once the consumer stopped running, and committed past what it handled
    expect(handled).toEqual(['slow']);
    const committed = cluster.commits.get(`registry/${OTA}/0`)!;
    expect(JSON.parse(committed.metadata!)).toMatchObject({ starts: 0 });
    expect(committed.offset).toBe((BigInt(offsets[0]!) + 1n).toString());
    const live = cluster.consumers.filter((c) => !c.disconnected);
    expect(live).toHaveLength(1);
    expect([...live[0]!.subscribed].sort()).toEqual([ROUND, OTA].sort());
  });

  it('refuses a second subscription of the same group to the same topic on one bus', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'p1');
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    await expect(
      b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined }),
    ).rejects.toMatchObject({
      code: 'invalid_subscription',
    });
  });

  it('hands every partition of every topic to a member subscribed to it, when members subscribe different topics', async () => {
    const cluster = registryCluster();
    const [a, b, c] = [bus(cluster, 'a'), bus(cluster, 'b'), bus(cluster, 'c')];
    await a.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    await a.subscribe({ group: 'registry', topics: [ROUND], handler: () => undefined });
    await b.subscribe({ group: 'registry', topics: [HEALTH], handler: () => undefined });
    await c.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    for (const topic of [OTA, ROUND, HEALTH]) {
      const owned = owners(cluster, 'registry', topic);
      expect(
        owned.every((o) => o !== undefined),
        `${topic} fully owned`,
      ).toBe(true);
      expect(
        owned.every((o) => o!.subscribed.includes(topic)),
        `${topic} only to subscribers`,
      ).toBe(true);
    }
    // OTA's 12 partitions are split between its two subscribers
    const otaOwners = new Set(owners(cluster, 'registry', OTA).map((o) => o!.config.groupId + o!.memberId));
    expect(otaOwners.size).toBe(2);
    for (const x of [a, b, c]) expect((await x.health()).ready).toBe(true);
  });

  it("pins the defect: kafkajs's round robin leaves the other members' topics unowned in such a group", async () => {
    const cluster = registryCluster();
    const rr = kafkajs.PartitionAssigners.roundRobin({
      cluster: cluster.clusterView() as never,
      groupId: 'g',
      logger: {} as never,
    });
    const meta = (topics: string[]) => rr.protocol({ topics }).metadata;
    const plan = await rr.assign({
      members: [
        { memberId: 'm1', memberMetadata: meta([HEALTH]) },
        { memberId: 'm2', memberMetadata: meta([OTA]) },
      ],
      topics: [HEALTH], // the leader's own subscription
    });
    const topics = plan.flatMap((p) =>
      Object.keys(kafkajs.AssignerProtocol.MemberAssignment.decode(p.memberAssignment)!.assignment),
    );
    expect(new Set(topics)).toEqual(new Set([HEALTH])); // OTA: nobody
  });

  it('plans a balanced, deterministic assignment and owns nothing nobody subscribed', () => {
    const partitions = (t: string) => Array.from({ length: t === 'x' ? 4 : 2 }, (_, i) => i);
    const plan = planAssignment(
      [
        { memberId: 'b', topics: ['x', 'y'] },
        { memberId: 'a', topics: ['x'] },
        { memberId: 'c', topics: [] },
      ],
      partitions,
    );
    expect(Object.fromEntries(plan)).toEqual({ a: { x: [0, 2] }, b: { x: [1, 3], y: [0, 1] }, c: {} });
  });

  it('dispatches each batch to the handler of its topic, across buses, and every record is handled', async () => {
    const cluster = registryCluster();
    const got: BusRecord[] = [];
    const handler = (r: BusRecord) => void got.push(r);
    const [a, b] = [bus(cluster, 'a'), bus(cluster, 'b')];
    await Promise.all([
      a.subscribe({ group: 'registry', topics: [OTA], handler }),
      a.subscribe({ group: 'registry', topics: [ROUND], handler }),
    ]);
    await b.subscribe({ group: 'registry', topics: [HEALTH], handler });
    await b.subscribe({ group: 'registry', topics: [OTA], handler });
    let sent = 0;
    for (const topic of [OTA, ROUND, HEALTH]) {
      for (let p = 0; p < cluster.topics.get(topic)!.partitions; p++) {
        await cluster.deliver('registry', topic, p, [`${topic}:${p}:0`, `${topic}:${p}:1`]);
        sent += 2;
      }
    }
    expect(got).toHaveLength(sent);
    expect(new Set(got.map((r) => r.value.toString())).size).toBe(sent);
    for (const r of got) expect(r.value.toString().startsWith(`${r.topic}:${r.partition}:`)).toBe(true);
  });
});

describe('Kafka readiness', () => {
  it('fails, and counts, when a consumed topic has partitions no member owns for longer than a rebalance', async () => {
    const cluster = registryCluster();
    const counts: Array<[string, string, number]> = [];
    const observer: BusObserver = { unownedPartitions: (g, t, n) => void counts.push([g, t, n]) };
    const strict = bus(cluster, 'a', { rebalanceTimeoutMs: 0, observer });
    await strict.subscribe({ group: 'registry', topics: [ROUND], handler: () => undefined });
    expect(await strict.health()).toMatchObject({ ready: true });
    cluster.topic(ROUND, 8); // grown behind the group's back: partitions 6 and 7 have no owner until a rejoin
    const health = await strict.health();
    expect(health.ready).toBe(false);
    expect(health.detail).toMatch(/edgefl\.fl\.round\.v1: 2 of 8 partition\(s\) owned by no member/);
    expect(counts.at(-1)).toEqual(['registry', ROUND, 2]);
  });

  it('stays ready while partitions are unowned for less than a rebalance', async () => {
    const cluster = registryCluster();
    const patient = bus(cluster, 'a', { rebalanceTimeoutMs: 3_600_000 });
    await patient.subscribe({ group: 'registry', topics: [ROUND], handler: () => undefined });
    cluster.topic(ROUND, 8);
    expect((await patient.health()).ready).toBe(true);
  });

  it('restarts a consumer that crashed on a non-retriable error, and is not ready until it rejoined', async () => {
    const cluster = registryCluster();
    let restarts = 0;
    const b = bus(cluster, 'a', {
      restartBackoffMs: 3_600_000,
      observer: { consumerRestarted: () => void restarts++ },
    });
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    const first = cluster.consumers[0]!;
    first.emit(first.events.CRASH, {
      error: new kafkajs.KafkaJSNonRetriableError("Cannot read properties of undefined (reading '2')"),
      groupId: 'registry',
      restart: false,
    });
    const down = await b.health();
    expect(down.ready).toBe(false);
    expect(down.detail).toMatch(/consumer crashed: KafkaJSNonRetriableError: Cannot read properties/);
    expect(restarts).toBe(1);
    expect(cluster.consumers).toHaveLength(1); // the backoff (an hour here) has not passed
  });

  it('restarts after the backoff with a new consumer over the same topics, and is ready again', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'a', { restartBackoffMs: 1 });
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    await b.subscribe({ group: 'registry', topics: [HEALTH], handler: () => undefined });
    const before = cluster.consumers.length;
    const crashed = cluster.consumers.at(-1)!;
    crashed.emit(crashed.events.CRASH, { error: new Error('boom'), groupId: 'registry', restart: false });
    await eventually(
      'a new consumer joined',
      async () => cluster.consumers.length > before && (await b.health()).ready,
      10_000,
    );
    expect(crashed.disconnected).toBe(true);
    const live = cluster.consumers.filter((c) => !c.disconnected);
    expect(live).toHaveLength(1);
    expect([...live[0]!.subscribed].sort()).toEqual([HEALTH, OTA].sort());
  });

  it('leaves a retriable crash to kafkajs (no second consumer) and is not ready until the rejoin', async () => {
    const cluster = registryCluster();
    const b = bus(cluster, 'a', { restartBackoffMs: 1 });
    await b.subscribe({ group: 'registry', topics: [OTA], handler: () => undefined });
    const c = cluster.consumers[0]!;
    c.emit(c.events.CRASH, { error: new Error('connection lost'), groupId: 'registry', restart: true });
    expect((await b.health()).ready).toBe(false);
    await cluster.rebalance('registry'); // kafkajs's own restart rejoins
    expect((await b.health()).ready).toBe(true);
    expect(cluster.consumers).toHaveLength(1);
  });
});
