import type { KafkaTopicValues, TypedBus, TypedRecord } from '@edgefl/bus';
import type { Subscription } from '@edgefl/bus';
import type { ReadinessRegistry } from '@edgefl/service-kit';

/**
 * State every replica needs whole (revocations, current releases): the topic is read from the beginning in a
 * consumer group of this replica's own, so each replica sees every record and rebuilds its view after a restart.
 * Readiness reports the replica not ready until it has caught up with the records that existed at boot.
 */
export async function subscribeReplayed<T extends keyof KafkaTopicValues & string>(options: {
  bus: TypedBus<KafkaTopicValues>;
  readiness: ReadinessRegistry;
  check: string;
  topic: T;
  group: string;
  handler: (record: TypedRecord<KafkaTopicValues, T>) => Promise<void> | void;
}): Promise<{ subscription: Subscription; caughtUp(): Promise<boolean> }> {
  const { bus, topic, group } = options;
  const subscription = await bus.subscribe({
    group,
    topics: [topic],
    fromBeginning: true,
    maxAttempts: 3,
    handler: options.handler,
  });
  let done = false;
  const caughtUp = async () => {
    if (!done) done = (await bus.bus.consumerLag(group, [topic])).every((p) => p.lag === 0);
    return done;
  };
  options.readiness.register(options.check, async () =>
    (await caughtUp()) ? { ready: true } : { ready: false, detail: `replaying ${topic}` },
  );
  return { subscription, caughtUp };
}
