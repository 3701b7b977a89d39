import { KAFKA_TOPICS } from '@edgefl/contracts';
import { Inject, Injectable } from '@nestjs/common';
import { OnEvent, UnprocessableRecordError, type KafkaTopicValues, type TypedRecord } from '@edgefl/bus';
import { elementCount, parameterShapes, parseModelSpec } from '@edgefl/model';
import { DomainError, LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { RegistryConfig } from '../config.js';
import { ModelsService } from '../models/models.service.js';
import { invalidHealth } from '../rollouts/rollout-health.js';
import { RolloutIntake } from '../rollouts/rollout-intake.service.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { fetchRoundWeights, type WeightsRef } from './round-artifacts.js';

const GROUP = 'registry';
const HEALTH = KAFKA_TOPICS.rolloutHealth.name;
const OTA = KAFKA_TOPICS.otaStatus.name;
const ROUND = KAFKA_TOPICS.flRound.name;

/**
 * A bad input in a consumed record (a domain error that is the caller's fault) is dead-lettered at once: no retry
 * can fix it, so it is never retried forever. A service fault is left to the bus's retries.
 */
async function deadLetterCallerFaults<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof DomainError && error.fault === 'caller') {
      throw new UnprocessableRecordError('REJECTED', error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * What the registry consumes: rollout-health windows and OTA statuses feed the rollout gates; round results of the
 * aggregator become candidate versions with provenance. Each handler runs its effects through the store's
 * transactional inbox (the event id marked processed in the transaction of the effects), so a record replayed
 * after a crash is skipped exactly, whatever the bus adapter.
 */
@Injectable()
export class RegistryConsumers {
  constructor(
    private readonly rollouts: RolloutIntake,
    private readonly models: ModelsService,
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  @OnEvent(HEALTH, { group: GROUP, fromBeginning: true })
  async onRolloutHealth(record: TypedRecord<KafkaTopicValues, typeof HEALTH>): Promise<void> {
    // values Avro cannot rule out (NaN, rates outside 0..1, ...) are refused, never acted on
    const invalid = invalidHealth(record.value);
    if (invalid) throw new UnprocessableRecordError('INVALID_HEALTH', invalid);
    let known = true;
    await this.store.inbox(GROUP, record.eventId, async () => {
      known = await this.rollouts.recordHealth(record.value);
    });
    if (!known) {
      this.logger.warn(
        { releaseId: record.value.releaseId },
        'rollout health for an unknown release ignored',
      );
    }
  }

  @OnEvent(OTA, { group: GROUP, fromBeginning: true })
  async onOtaStatus(record: TypedRecord<KafkaTopicValues, typeof OTA>): Promise<void> {
    await this.store.inbox(GROUP, record.eventId, async () => {
      await this.rollouts.recordOtaStatus(record.value);
    });
  }

  @OnEvent(ROUND, { group: GROUP, fromBeginning: true })
  async onRound(record: TypedRecord<KafkaTopicValues, typeof ROUND>): Promise<void> {
    await this.store.inbox(GROUP, record.eventId, () => this.storeRound(record));
  }

  /** A round result becomes a candidate version (inside the inbox transaction). */
  private async storeRound(record: TypedRecord<KafkaTopicValues, typeof ROUND>): Promise<void> {
    const e = record.value;
    if (!('io.edgefl.fl.RoundResult' in e.event)) return;
    const result = e.event['io.edgefl.fl.RoundResult'];
    const model = await this.store.catalog.getModel(e.modelId);
    if (!model || model.tenantId !== e.tenant) {
      throw new UnprocessableRecordError(
        'UNKNOWN_MODEL',
        `round ${e.roundId}: tenant ${e.tenant} has no model ${e.modelId}`,
      );
    }
    if (await this.store.catalog.versionForRound(model.id, e.roundId)) return; // replayed result: the version exists
    const bytes = Buffer.isBuffer(result.weights) ? result.weights : await this.fetchWeights(result.weights);
    const base = await this.store.catalog.getVersion(model.id, result.baseVersion);
    const meta = {
      origin: 'FEDERATED_ROUND' as const,
      roundId: e.roundId,
      label: `round-${e.roundId}`.slice(0, 128),
      parentVersion: base ? result.baseVersion : undefined,
      metrics: result.metrics,
      provenance: {
        roundId: e.roundId,
        baseVersion: result.baseVersion,
        participants: result.participants,
        epsilonSpent: result.epsilonSpent,
        deltaSpent: result.deltaSpent,
        eventId: e.eventId,
      },
    };
    const f32Bytes =
      model.spec === null
        ? -1
        : parameterShapes(parseModelSpec(model.spec)).reduce((n, s) => n + elementCount(s.dims), 0) * 4;
    const version = await deadLetterCallerFaults(() =>
      bytes.byteLength === f32Bytes
        ? this.models.createFromWeights(model.id, this.models.weightsFromF32(model, bytes), meta)
        : this.models.createVersion(model.id, bytes, meta),
    ).catch(async (error: unknown) => {
      // a concurrent replica stored this round first: fine
      if (
        error instanceof UnprocessableRecordError ||
        !(await this.store.catalog.versionForRound(model.id, e.roundId))
      )
        throw error;
      return null;
    });
    if (version)
      this.logger.info(
        { modelId: model.id, version: version.version, roundId: e.roundId },
        'candidate version from a round',
      );
  }

  /** Weights by reference, only from the configured prefixes (see round-artifacts.ts). */
  private fetchWeights(ref: WeightsRef): Promise<Buffer> {
    return fetchRoundWeights(ref, {
      prefixes: this.config.own.roundArtifactPrefixes,
      maxBytes: this.config.own.maxUploadBytes,
    });
  }
}
