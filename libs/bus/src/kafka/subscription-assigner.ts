// The partition assigner of our consumer groups. Kafka's group protocol hands the leader every member's
// subscription; kafkajs's own assigners ignore them and spread only the topics the leader itself subscribed over
// all members, so in a group whose members subscribe different topics the others' topics go unowned (and members
// receive topics they never subscribed, which kafkajs drops). This one reads each member's subscription from its
// metadata and assigns every partition of every subscribed topic to a member that subscribed it.
import kafkajs from 'kafkajs';
import type { Assigner, GroupMember, GroupMemberAssignment, PartitionAssigner } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

export const SUBSCRIPTION_ASSIGNER_NAME = 'EdgeflSubscriptionAssigner';
const VERSION = 1;

/** One member's subscription, as the leader decodes it from the join metadata. */
export interface MemberSubscription {
  memberId: string;
  topics: readonly string[];
}

/**
 * Pure: who owns which partition. Each partition of a topic goes to the least-loaded member subscribed to that
 * topic (ties by member id), topics and partitions in order, so the plan is deterministic and balanced across the
 * group; a topic nobody subscribed gets no owner, a member subscribed to nothing gets nothing.
 */
export function planAssignment(
  members: readonly MemberSubscription[],
  partitionsOf: (topic: string) => readonly number[],
): Map<string, Record<string, number[]>> {
  const sorted = [...members].sort((a, b) =>
    a.memberId < b.memberId ? -1 : a.memberId > b.memberId ? 1 : 0,
  );
  const load = new Map(sorted.map((m) => [m.memberId, 0]));
  const plan = new Map<string, Record<string, number[]>>(sorted.map((m) => [m.memberId, {}]));
  const topics = [...new Set(sorted.flatMap((m) => m.topics))].sort();
  for (const topic of topics) {
    const subscribers = sorted.filter((m) => m.topics.includes(topic)).map((m) => m.memberId);
    for (const partition of [...partitionsOf(topic)].sort((a, b) => a - b)) {
      let owner = subscribers[0]!;
      for (const id of subscribers) if (load.get(id)! < load.get(owner)!) owner = id;
      load.set(owner, load.get(owner)! + 1);
      const mine = plan.get(owner)!;
      (mine[topic] ??= []).push(partition);
    }
  }
  return plan;
}

/** The kafkajs PartitionAssigner over planAssignment (subscriptions from the members' join metadata). */
export const subscriptionAssigner: PartitionAssigner = ({ cluster }) => {
  const assigner: Assigner = {
    name: SUBSCRIPTION_ASSIGNER_NAME,
    version: VERSION,
    async assign({
      members,
    }: {
      members: GroupMember[];
      topics: string[];
    }): Promise<GroupMemberAssignment[]> {
      const subscriptions = members.map((m) => ({
        memberId: m.memberId,
        topics: AssignerProtocol.MemberMetadata.decode(m.memberMetadata)?.topics ?? [],
      }));
      const union = [...new Set(subscriptions.flatMap((s) => s.topics))];
      // The leader's metadata covers only its own topics until it is told about the others'.
      await cluster.addMultipleTargetTopics(union);
      const plan = planAssignment(subscriptions, (topic) =>
        cluster.findTopicPartitionMetadata(topic).map((p) => p.partitionId),
      );
      return [...plan].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: VERSION,
          assignment,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }: { topics: string[] }) {
      return {
        name: SUBSCRIPTION_ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: VERSION,
          topics,
          userData: Buffer.alloc(0),
        }),
      };
    },
  };
  return assigner;
};
