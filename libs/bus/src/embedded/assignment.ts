// Partition assignment of the embedded bus's consumer groups, as pure functions: who should own which partition,
// and what one member does with its leases to get there. No I/O and no clock: the membership feeds them what it
// read from the bus file, in one transaction, and writes back what they decide.

export interface TopicPartition {
  topic: string;
  partition: number;
}

/** A live member of a consumer group and the topics it subscribed. */
export interface GroupMember {
  id: string;
  topics: readonly string[];
}

/** A partition's current lease holder. */
export interface Lease extends TopicPartition {
  member: string;
}

const byId = (a: GroupMember, b: GroupMember) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Per-topic round robin: for each topic of `partitions` (name → partition count), the members subscribed to it are
 * ordered by id and partition p goes to the member at index p mod n. Every member computes the same answer from
 * the same member list, so no leader is needed. The result has an entry for every member (empty when it subscribed
 * none of the topics); each list follows the order of `partitions`, then partition number.
 */
export function assignPartitions(
  members: readonly GroupMember[],
  partitions: ReadonlyMap<string, number>,
): Map<string, TopicPartition[]> {
  const sorted = [...members].sort(byId);
  const assignment = new Map<string, TopicPartition[]>(sorted.map((m) => [m.id, []]));
  for (const [topic, count] of partitions) {
    const subscribed = sorted.filter((m) => m.topics.includes(topic));
    if (subscribed.length === 0) continue;
    for (let p = 0; p < count; p++)
      assignment.get(subscribed[p % subscribed.length]!.id)!.push({ topic, partition: p });
  }
  return assignment;
}

export interface LeasePlan {
  /** Leases the member holds but should not: released now, so their new owner can claim them. */
  release: TopicPartition[];
  /** Desired partitions nobody holds: the member takes their lease. */
  claim: TopicPartition[];
  /** Desired partitions the member already holds: their lease is extended. */
  renew: TopicPartition[];
  /** What the member owns afterwards (claim and renew, in the order of `desired`, then what it keeps). */
  owned: TopicPartition[];
  /** Held but no longer desired, and busy (a delivery in flight): released at a later rebalance, once idle. */
  keep: TopicPartition[];
}

/**
 * One member's moves towards its desired partitions. A partition changes hands only when its holder releases it
 * (at the holder's next rebalance) or its lease expires; a desired partition still held by another member is left
 * alone until then, so two members never own a partition at once. A held partition in `busy` (keys
 * `topic\0partition`) whose delivery is in flight is kept (and renewed) rather than released.
 */
export function planLeases(
  memberId: string,
  desired: readonly TopicPartition[],
  leases: readonly Lease[],
  busy: ReadonlySet<string> = new Set(),
): LeasePlan {
  const key = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
  const wanted = new Set(desired.map(key));
  const holder = new Map(leases.map((l) => [key(l), l.member]));
  const plan: LeasePlan = { release: [], claim: [], renew: [], owned: [], keep: [] };
  for (const l of leases)
    if (l.member === memberId && !wanted.has(key(l)))
      (busy.has(key(l)) ? plan.keep : plan.release).push({ topic: l.topic, partition: l.partition });
  for (const tp of desired) {
    const h = holder.get(key(tp));
    if (h === undefined) plan.claim.push(tp);
    else if (h === memberId) plan.renew.push(tp);
    else continue; // still held by its previous owner
    plan.owned.push(tp);
  }
  plan.owned.push(...plan.keep);
  return plan;
}
