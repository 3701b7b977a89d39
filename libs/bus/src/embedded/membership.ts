// One member's side of a consumer group in the bus file: joining (the group's start offsets, the member row),
// heartbeats, rebalancing through leases, committed offsets guarded by the lease, and leaving. Who should own what
// is decided by the pure functions of assignment.ts; this file reads their inputs and writes their decisions, each
// step in one write transaction.
import { randomUUID } from 'node:crypto';
import {
  assignPartitions,
  planLeases,
  type GroupMember,
  type Lease,
  type TopicPartition,
} from './assignment.js';
import { HOST, tpKey, type BusStore } from './store.js';

/** Whether process `pid` of this host is alive (signal 0 checks without signalling). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, owned by another user
  }
}

export interface MembershipTimings {
  /** Member heartbeat and rebalance period. */
  heartbeatIntervalMs: number;
  /** A member silent this long loses its partitions. */
  sessionTimeoutMs: number;
}

/** What a rebalance leaves a member with, by tpKey. */
export interface Rebalanced {
  /** Partitions it holds the lease of. */
  owned: Map<string, TopicPartition>;
  /** Partitions it should hold; an owned one not wanted is kept only until its delivery in flight ends. */
  wanted: Set<string>;
}

/**
 * A delivery's own writes (its start mark, its progress) run at once when the lock is free: queued for the next
 * turn of the event loop, each commit within a batch would cap a partition at commitEvery records per turn, and a
 * producer in the same process would outpace its consumers (publish-to-handler latency grew 50-fold).
 */
const NOW = { now: true } as const;

export class GroupMembership {
  readonly group: string;
  readonly topics: readonly string[];
  readonly memberId = randomUUID();
  private readonly store: BusStore;
  private readonly timings: MembershipTimings;

  constructor(store: BusStore, group: string, topics: readonly string[], timings: MembershipTimings) {
    this.store = store;
    this.group = group;
    this.topics = topics;
    this.timings = timings;
  }

  /**
   * Joins the group: the group's start position on each partition is fixed by its first member (the oldest record
   * with `fromBeginning`, the current end otherwise), then this member's row is written.
   */
  async join(fromBeginning: boolean): Promise<void> {
    await this.store.tx(() => {
      for (const topic of this.topics) {
        const partitions = this.store.partitionsOf(topic, true);
        for (let p = 0; p < partitions; p++) {
          this.store
            .stmt(
              `INSERT OR IGNORE INTO bus_offsets (grp, topic, part, committed)
               SELECT ?, ?, ?, CASE WHEN ? THEN 0 ELSE COALESCE((SELECT next_off FROM bus_partitions WHERE topic = ? AND part = ?), 0) END`,
            )
            .run(this.group, topic, p, fromBeginning ? 1 : 0, topic, p);
        }
      }
      this.writeMember(Date.now());
    });
  }

  private writeMember(now: number): void {
    this.store
      .stmt('INSERT OR REPLACE INTO bus_members (grp, member, topics, heartbeat_at) VALUES (?, ?, ?, ?)')
      .run(this.group, this.memberId, JSON.stringify(this.topics), now);
    this.store
      .stmt('INSERT OR IGNORE INTO bus_member_processes (grp, member, host, pid) VALUES (?, ?, ?, ?)')
      .run(this.group, this.memberId, HOST, process.pid);
  }

  /**
   * Deletes the members that are dead: silent past the session, or (sharing this host) whose process is gone, which
   * is known at once; with them go their leases (their delivery counts stay: they count the crash).
   */
  private dropDeadMembers(now: number): void {
    const s = (sql: string) => this.store.stmt(sql);
    s('DELETE FROM bus_members WHERE grp = ? AND heartbeat_at < ?').run(
      this.group,
      now - this.timings.sessionTimeoutMs,
    );
    const local = s('SELECT member, pid FROM bus_member_processes WHERE grp = ? AND host = ?').all(
      this.group,
      HOST,
    ) as Array<{ member: string; pid: number }>;
    for (const m of local)
      if (m.pid !== process.pid && !processAlive(m.pid))
        s('DELETE FROM bus_members WHERE grp = ? AND member = ?').run(this.group, m.member);
    s(
      'DELETE FROM bus_member_processes WHERE grp = ? AND member NOT IN (SELECT member FROM bus_members WHERE grp = ?)',
    ).run(this.group, this.group);
  }

  /** Refreshes this member's row and its leases; returns the partitions (tpKey) it still holds. */
  async heartbeat(now: number): Promise<Set<string>> {
    const mine = await this.store.tx(() => {
      this.writeMember(now);
      this.store
        .stmt('UPDATE bus_leases SET expires_at = ? WHERE grp = ? AND member = ?')
        .run(now + this.timings.sessionTimeoutMs, this.group, this.memberId);
      return this.store
        .stmt('SELECT topic, part FROM bus_leases WHERE grp = ? AND member = ?')
        .all(this.group, this.memberId) as Array<{ topic: string; part: number }>;
    });
    return new Set(mine.map((l) => tpKey(l.topic, l.part)));
  }

  /**
   * Drops members silent past the session and their leases, computes this member's share of the partitions over
   * the members left, releases the rest (except `busy` partitions, whose delivery is in flight: kept until idle),
   * claims what is free. Returns what this member owns now and what it should own, by tpKey.
   */
  async rebalance(now: number, busy: ReadonlySet<string> = new Set()): Promise<Rebalanced> {
    const { sessionTimeoutMs } = this.timings;
    const s = (sql: string) => this.store.stmt(sql);
    return this.store.tx(() => {
      this.writeMember(now);
      this.dropDeadMembers(now);
      s(
        'DELETE FROM bus_leases WHERE grp = ? AND (expires_at < ? OR member NOT IN (SELECT member FROM bus_members WHERE grp = ?))',
      ).run(this.group, now, this.group);
      const members: GroupMember[] = (
        s('SELECT member, topics FROM bus_members WHERE grp = ? ORDER BY member').all(this.group) as Array<{
          member: string;
          topics: string;
        }>
      ).map((m) => ({ id: m.member, topics: safeTopics(m.topics) }));
      const counts = new Map(this.topics.map((topic) => [topic, this.store.partitionsOf(topic, true)]));
      const desired = assignPartitions(members, counts).get(this.memberId) ?? [];
      const leases: Lease[] = (
        s('SELECT topic, part, member FROM bus_leases WHERE grp = ?').all(this.group) as Array<{
          topic: string;
          part: number;
          member: string;
        }>
      ).map((l) => ({ topic: l.topic, partition: l.part, member: l.member }));
      const plan = planLeases(this.memberId, desired, leases, busy);
      for (const tp of plan.release)
        s('DELETE FROM bus_leases WHERE grp = ? AND topic = ? AND part = ? AND member = ?').run(
          this.group,
          tp.topic,
          tp.partition,
          this.memberId,
        );
      for (const tp of plan.claim)
        s('INSERT INTO bus_leases (grp, topic, part, member, expires_at) VALUES (?, ?, ?, ?, ?)').run(
          this.group,
          tp.topic,
          tp.partition,
          this.memberId,
          now + sessionTimeoutMs,
        );
      for (const tp of [...plan.renew, ...plan.keep])
        s('UPDATE bus_leases SET expires_at = ? WHERE grp = ? AND topic = ? AND part = ?').run(
          now + sessionTimeoutMs,
          this.group,
          tp.topic,
          tp.partition,
        );
      return {
        owned: new Map(plan.owned.map((tp) => [tpKey(tp.topic, tp.partition), tp])),
        wanted: new Set(desired.map((tp) => tpKey(tp.topic, tp.partition))),
      };
    });
  }

  /** The group's committed offset on a partition (the next record to handle). */
  committed(topic: string, partition: number): number {
    return (
      (
        this.store
          .stmt('SELECT committed FROM bus_offsets WHERE grp = ? AND topic = ? AND part = ?')
          .get(this.group, topic, partition) as { committed: number } | undefined
      )?.committed ?? 0
    );
  }

  /**
   * Persists that a delivery starts at the committed offset `committed` of a partition (on its first record); returns
   * how many deliveries started there before and never ended (their process died): the crash count.
   */
  async begin(topic: string, partition: number, committed: number): Promise<number> {
    return this.store.tx(() => {
      const row = this.store
        .stmt('SELECT committed, starts FROM bus_offsets WHERE grp = ? AND topic = ? AND part = ?')
        .get(this.group, topic, partition) as { committed: number; starts: number } | undefined;
      const before = row?.committed === committed ? row.starts : 0;
      this.writeOffset(topic, partition, committed, before + 1);
      return before;
    }, NOW);
  }

  /** Whether this member holds the partition's lease (inside a transaction: the caller's writes depend on it). */
  holds(topic: string, partition: number): boolean {
    const lease = this.store
      .stmt('SELECT member FROM bus_leases WHERE grp = ? AND topic = ? AND part = ?')
      .get(this.group, topic, partition) as { member: string } | undefined;
    return lease?.member === this.memberId;
  }

  /**
   * Sets the committed offset and the deliveries started there (inside a transaction, after holds()): 1 while the
   * delivery goes on from `next`, 0 once it ended.
   */
  writeOffset(topic: string, partition: number, next: number, starts = 1): void {
    this.store
      .stmt(
        `INSERT INTO bus_offsets (grp, topic, part, committed, starts) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (grp, topic, part) DO UPDATE SET committed = excluded.committed, starts = excluded.starts`,
      )
      .run(this.group, topic, partition, next, starts);
  }

  /**
   * Commits progress in one transaction, only while this member still holds the partition's lease (a member that
   * lost it must not move it; then nothing is written and this resolves false): `also` (dead letters, processed
   * ids), the offset `next` (when not null), and the deliveries started there: none (`final`), or this one.
   */
  async commit(
    topic: string,
    partition: number,
    next: number | null,
    final: boolean,
    also: () => void = () => {},
  ): Promise<boolean> {
    return this.store.tx(() => {
      if (!this.holds(topic, partition)) return false;
      also();
      if (next !== null) this.writeOffset(topic, partition, next, final ? 0 : 1);
      else if (final)
        this.store
          .stmt('UPDATE bus_offsets SET starts = 0 WHERE grp = ? AND topic = ? AND part = ?')
          .run(this.group, topic, partition);
      return true;
    }, NOW);
  }

  /** Leaves at once, so the others take over without waiting for the session timeout. */
  async leave(): Promise<void> {
    await this.store.tx(() => {
      for (const table of ['bus_leases', 'bus_members', 'bus_member_processes'])
        this.store.stmt(`DELETE FROM ${table} WHERE grp = ? AND member = ?`).run(this.group, this.memberId);
    });
  }
}

function safeTopics(json: string): string[] {
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}
