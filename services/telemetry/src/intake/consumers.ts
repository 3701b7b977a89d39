import { KAFKA_TOPICS } from '@edgefl/contracts';
import { Injectable } from '@nestjs/common';
import { OnEvent, type KafkaTopicValues, type TypedRecord, type UndecodableRecord } from '@edgefl/bus';
import type { EventKind } from '../metrics/telemetry-metrics.js';
import { IntakeService } from './intake.service.js';

const GROUP = 'telemetry';
const T = {
  heartbeat: KAFKA_TOPICS.deviceTelemetry.name,
  presence: KAFKA_TOPICS.devicePresence.name,
  lifecycle: KAFKA_TOPICS.deviceLifecycle.name,
  inference: KAFKA_TOPICS.inferenceLog.name,
  ota: KAFKA_TOPICS.otaStatus.name,
  release: KAFKA_TOPICS.registryRelease.name,
  version: KAFKA_TOPICS.modelVersion.name,
  round: KAFKA_TOPICS.flRound.name,
} as const;

type Batch<K extends keyof typeof T> = TypedRecord<KafkaTopicValues, (typeof T)[K]>[];
const options = { group: GROUP, fromBeginning: true, batch: true } as const;

/**
 * What telemetry consumes, as group `telemetry`, in batches: each batch is one transaction of the intake (its
 * inbox marks and effects), so a batch replayed after a crash counts once. Records that do not decode are counted
 * and dropped (`reason="undecodable"`).
 */
@Injectable()
export class TelemetryConsumers {
  constructor(private readonly intake: IntakeService) {}

  private bad(kind: EventKind, undecodable: UndecodableRecord[]): void {
    this.intake.undecodable(kind, undecodable.length, undecodable[0]?.message);
  }

  @OnEvent(T.heartbeat, options)
  async onHeartbeats(records: Batch<'heartbeat'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('heartbeat', undecodable);
    await this.intake.heartbeats(records);
  }

  @OnEvent(T.presence, options)
  async onPresence(records: Batch<'presence'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('presence', undecodable);
    await this.intake.presence(records);
  }

  @OnEvent(T.lifecycle, options)
  async onLifecycle(records: Batch<'lifecycle'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('lifecycle', undecodable);
    await this.intake.lifecycle(records);
  }

  @OnEvent(T.inference, options)
  async onInferenceLogs(records: Batch<'inference'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('inference', undecodable);
    await this.intake.inferenceLogs(records);
  }

  @OnEvent(T.ota, options)
  async onOtaStatus(records: Batch<'ota'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('ota', undecodable);
    await this.intake.otaStatuses(records);
  }

  @OnEvent(T.release, options)
  async onRelease(records: Batch<'release'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('release', undecodable);
    await this.intake.releaseEvents(records);
  }

  @OnEvent(T.version, options)
  async onModelVersion(records: Batch<'version'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('version', undecodable);
    await this.intake.modelVersions(records);
  }

  @OnEvent(T.round, options)
  async onRound(records: Batch<'round'>, undecodable: UndecodableRecord[]): Promise<void> {
    this.bad('round', undecodable);
    await this.intake.rounds(records);
  }
}
