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
import { tpKey, type BusStore } from './store.js';

export interface MembershipTimings {
  /** Member heartbeat and rebalance period. */
  heartbeatIntervalMs: number;
  /** A member silent this long loses its partitions. */
  sessionTimeoutMs: number;
}

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
  join(fromBeginning: boolean): void {
    this.store.tx(() => {
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
  }

  /** Refreshes this member's row and its leases; returns the partitions (tpKey) it still holds. */
  heartbeat(now: number): Set<string> {
    const mine = this.store.tx(() => {
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
   * the members left, releases the rest, claims what is free. Returns what this member owns now, by tpKey.
   */
  rebalance(now: number): Map<string, TopicPartition> {
    const { sessionTimeoutMs } = this.timings;
    const s = (sql: string) => this.store.stmt(sql);
    return this.store.tx(() => {
      this.writeMember(now);
      s('DELETE FROM bus_members WHERE grp = ? AND heartbeat_at < ?').run(this.group, now - sessionTimeoutMs);
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
      const plan = planLeases(this.memberId, desired, leases);
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
      for (const tp of plan.renew)
        s('UPDATE bus_leases SET expires_at = ? WHERE grp = ? AND topic = ? AND part = ?').run(
          now + sessionTimeoutMs,
          this.group,
          tp.topic,
          tp.partition,
        );
      return new Map(plan.owned.map((tp) => [tpKey(tp.topic, tp.partition), tp]));
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
   * Commits `next` only while this member still holds the partition's lease (a member that lost it must not move
   * it). Returns false when the lease is gone.
   */
  commit(topic: string, partition: number, next: number): boolean {
    return this.store.tx(() => {
      const lease = this.store
        .stmt('SELECT member FROM bus_leases WHERE grp = ? AND topic = ? AND part = ?')
        .get(this.group, topic, partition) as { member: string } | undefined;
      if (lease?.member !== this.memberId) return false;
      this.store
        .stmt(
          'INSERT INTO bus_offsets (grp, topic, part, committed) VALUES (?, ?, ?, ?) ON CONFLICT (grp, topic, part) DO UPDATE SET committed = excluded.committed',
        )
        .run(this.group, topic, partition, next);
      return true;
    });
  }

  /** Leaves at once, so the others take over without waiting for the session timeout. */
  leave(): void {
    this.store.tx(() => {
      this.store.stmt('DELETE FROM bus_leases WHERE grp = ? AND member = ?').run(this.group, this.memberId);
      this.store.stmt('DELETE FROM bus_members WHERE grp = ? AND member = ?').run(this.group, this.memberId);
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
