import { Inject, Injectable } from '@nestjs/common';
import { KAFKA_TOPICS } from '@edgefl/contracts';
import { OnEvent, type KafkaTopicValues, type TypedRecord } from '@edgefl/bus';
import { ROUND_STORE, RoundsService } from './rounds.service.js';
import type { RoundStore } from './round-store.js';

const UPDATES = KAFKA_TOPICS.flUpdate.name;
const LIFECYCLE = KAFKA_TOPICS.deviceLifecycle.name;
const SECAGG = KAFKA_TOPICS.flSecAgg.name;

/**
 * What the aggregator consumes: updates (keyed by round, at-least-once, deduped by event id by the bus and again
 * by the store, so a redelivered update never counts twice) and the registry's device lifecycle events (the
 * current Ed25519 key of each device, for verifying update signatures; a revoked device has none).
 */
@Injectable()
export class RoundsConsumer {
  constructor(
    private readonly rounds: RoundsService,
    @Inject(ROUND_STORE) private readonly store: RoundStore,
  ) {}

  @OnEvent(UPDATES, { group: 'aggregator', dedupe: true, fromBeginning: true })
  async onUpdate(record: TypedRecord<KafkaTopicValues, typeof UPDATES>): Promise<void> {
    await this.rounds.intake(record.value);
  }

  /** Devices' secure-aggregation messages (the aggregator's own requests on the topic are skipped). */
  @OnEvent(SECAGG, { group: 'aggregator-secagg', dedupe: true })
  async onSecAgg(record: TypedRecord<KafkaTopicValues, typeof SECAGG>): Promise<void> {
    await this.rounds.secAggIntake(record.value);
  }

  @OnEvent(LIFECYCLE, { group: 'aggregator-devices', dedupe: true, fromBeginning: true })
  onLifecycle(record: TypedRecord<KafkaTopicValues, typeof LIFECYCLE>): void {
    const e = record.value;
    if (e.event === 'REVOKED' || e.publicKey === null || e.keyId === null) {
      if (e.event === 'REVOKED') this.store.setDeviceKey(e.tenant, e.deviceId, null);
      return;
    }
    this.store.setDeviceKey(e.tenant, e.deviceId, { publicKey: e.publicKey, keyId: e.keyId });
  }
}
