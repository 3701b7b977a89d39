import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { KAFKA_TOPICS, type FlUpdate, type RoundEvent } from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { BudgetExceededError, PrivacyBudgetLedger, computeEpsilon } from '@edgefl/fl';
import type { KeyProvider } from '@edgefl/keys';
import {
  ConflictError,
  KEY_PROVIDER,
  LOGGER,
  METRICS_REGISTRY,
  NotFoundError,
  SERVICE_CONFIG,
} from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AggregatorConfig } from '../config.js';
import { aggregateRound, robustZ, TooManyHeldUpdatesError } from './aggregation.js';
import { f32ToLayers, fetchBaseModel, layersToF32 } from './base-weights.js';
import { evaluateUpdate, sealInfo } from './intake.js';
import { impossible, toRoundSettings, type StartRoundRequest } from './round-settings.js';
import { RoundStore, type RoundRow, type RoundState } from './round-store.js';
import { RoundMetrics } from './rounds.metrics.js';

export const ROUND_STORE = Symbol.for('edgefl.aggregator.round-store');
const ROUND_TOPIC = KAFKA_TOPICS.flRound.name;

/**
 * The round engine: opens rounds (validated settings, DP budget charged, a fresh HPKE key, RoundOpened), takes
 * updates through every intake check, closes on quorum + grace or at the deadline (RoundClosed with counts),
 * aggregates with libs/fl and publishes RoundResult. Each step is recorded in the store before its event is
 * published with an id fixed in the store, so after a crash the engine resumes every unfinished round and
 * republishes only what was not marked published (the same event id: consumers dedupe it).
 */
@Injectable()
export class RoundsService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly metrics: RoundMetrics;
  private ledger: PrivacyBudgetLedger;
  private timer: NodeJS.Timeout | null = null;
  /** Rounds being closed or aggregated in this process (the tick must not start them twice). */
  private readonly busy = new Set<string>();
  private stopping = false;

  constructor(
    @Inject(SERVICE_CONFIG) private readonly config: AggregatorConfig,
    @Inject(ROUND_STORE) private readonly store: RoundStore,
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(KEY_PROVIDER) private readonly keys: KeyProvider,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(METRICS_REGISTRY) registry: Registry,
  ) {
    this.metrics = new RoundMetrics(registry);
    this.ledger = this.loadLedger();
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.tick(), this.config.own.tickMs);
    void this.tick();
  }

  onApplicationShutdown(): void {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
  }

  async start(request: StartRoundRequest, now = Date.now()): Promise<RoundRow> {
    const settings = toRoundSettings(request, now, this.config.own.dpBudget.delta);
    const roundId = request.roundId ?? randomUUID();
    if (this.store.round(roundId))
      throw new ConflictError(`round ${roundId} exists`, { code: 'round-exists' });
    if (settings.privacyMode === 'secure-aggregation')
      // the seam for issue 14: a secure-aggregation round runs the libs/fl protocol instead of opening seals
      throw impossible('unsupported-privacy-mode', 'secure-aggregation rounds are not available yet');
    const { dp } = settings;
    let epsilon = 0;
    let epsilonTotal = this.ledger.spent(request.tenant, request.modelId);
    const charge = { q: dp.samplingRate, sigma: dp.noiseMultiplier, steps: 1, roundId };
    if (dp.mode !== 'none') {
      epsilon = computeEpsilon({ ...charge, delta: dp.delta }).epsilon;
      const after = this.ledger.preview(request.tenant, request.modelId, charge);
      if (!(after <= this.config.own.dpBudget.epsilon)) {
        this.metrics.rounds.inc({ outcome: 'refused' });
        throw new ConflictError(
          `the round would take ε of ${request.tenant}/${request.modelId} to ${after.toFixed(4)}, above the budget ${this.config.own.dpBudget.epsilon}`,
          { code: 'dp-budget-exceeded' },
        );
      }
    }
    const base = await fetchBaseModel(
      this.config.own.registryUrl,
      this.config.own.registryToken,
      request.modelId,
      settings.baseVersion,
    );
    const sealKeyName = `round-${createHash('sha256').update(roundId).digest('hex').slice(0, 32)}`;
    const sealKey = await this.keys.createSealKey(sealKeyName);
    const row: RoundRow = {
      roundId,
      tenant: request.tenant,
      modelId: request.modelId,
      state: 'OPEN',
      settings,
      shape: base.layers.map((l) => l.length),
      openedAt: now,
      openedEventId: randomUUID(),
      openedPublished: false,
      quorumMetAt: null,
      closedAt: null,
      closeReason: null,
      closeDetail: null,
      closedEventId: null,
      closedPublished: false,
      resultEventId: null,
      resultPublished: false,
      epsilon,
      epsilonTotal,
      sealKeyName,
      result: null,
    };
    try {
      this.store.transaction(() => {
        if (dp.mode !== 'none') {
          row.epsilonTotal = epsilonTotal = this.ledger.spend(request.tenant, request.modelId, charge);
          this.store.saveLedger(this.ledger.toJSON());
        }
        this.store.insertRound(row, layersToF32(base.layers));
      });
    } catch (error) {
      // the transaction rolled back: the ledger in memory must not keep a charge the store does not have
      this.ledger = this.loadLedger();
      await this.keys.deleteSealKey(sealKeyName).catch(() => undefined);
      if (error instanceof BudgetExceededError)
        throw new ConflictError(error.message, { code: 'dp-budget-exceeded' });
      throw error;
    }
    if (dp.mode !== 'none') this.metrics.epsilonSpent.inc(epsilon);
    this.metrics.rounds.inc({ outcome: 'opened' });
    this.logger.info(
      { roundId, modelId: row.modelId, keyId: sealKey.keyId, quorum: settings.quorum },
      'round opened',
    );
    await this.publishOpened(row);
    return this.store.round(roundId)!;
  }

  private loadLedger(): PrivacyBudgetLedger {
    const budget = this.config.own.dpBudget;
    return new PrivacyBudgetLedger(() => budget, { state: this.store.ledger() });
  }

  async cancel(roundId: string, now = Date.now()): Promise<RoundRow> {
    const round = this.get(roundId);
    if (
      !this.store.markClosed(roundId, 'CANCELLED', 'ABORTED', 'cancelled by an operator', randomUUID(), now)
    )
      throw new ConflictError(`round ${roundId} is ${round.state.toLowerCase()}`, { code: 'round-not-open' });
    this.metrics.rounds.inc({ outcome: 'cancelled' });
    await this.resume(this.get(roundId));
    return this.get(roundId);
  }

  get(roundId: string): RoundRow {
    const round = this.store.round(roundId);
    if (!round) throw new NotFoundError(`no round ${roundId}`, { code: 'unknown-round' });
    return round;
  }

  list(filter: { tenant?: string; modelId?: string; state?: RoundState; limit: number }): RoundRow[] {
    return this.store.rounds(filter);
  }

  /** Participants, dropouts, rejections with reasons, norms, outliers (robust z of the norm), cosines, ε. */
  report(roundId: string) {
    const round = this.get(roundId);
    const updates = this.store.updates(roundId);
    const accepted = updates.filter((u) => u.verdict === 'accepted');
    const z = robustZ(accepted.map((u) => u.norm ?? 0));
    const received = new Set(updates.map((u) => u.deviceId));
    return {
      roundId,
      state: round.state,
      counts: this.store.counts(roundId),
      participants: accepted.map((u) => u.deviceId),
      dropouts: round.settings.selectedDevices.filter((d) => !received.has(d)),
      rejections: updates
        .filter((u) => u.verdict === 'rejected')
        .map((u) => ({
          updateId: u.updateId,
          deviceId: u.deviceId,
          reason: u.reason,
          detail: u.detail,
          receivedAt: u.receivedAt,
        })),
      updates: accepted.map((u, i) => ({
        updateId: u.updateId,
        deviceId: u.deviceId,
        numExamples: u.numExamples,
        norm: u.norm,
        normZ: z[i]!,
        cosineToRunningAggregate: u.cosine,
        outlier: z[i]! > round.settings.outlierZ,
      })),
      outliers: accepted.filter((_, i) => z[i]! > round.settings.outlierZ).map((u) => u.deviceId),
      epsilon: round.epsilon,
      epsilonTotal: round.epsilonTotal,
      delta: round.settings.dp.mode === 'none' ? 0 : round.settings.dp.delta,
      result: round.result,
    };
  }

  /** One record of edgefl.fl.update.v1. */
  async intake(u: FlUpdate, now = Date.now()): Promise<void> {
    const round = this.store.round(u.roundId);
    const v = await evaluateUpdate(u, round, this.store, (r, device, payload) =>
      this.keys.open(r.sealKeyName, payload, sealInfo(r.roundId), device),
    );
    if (v.verdict === 'duplicate-delivery') return;
    const base = {
      roundId: u.roundId,
      updateId: u.updateId,
      eventId: u.eventId,
      deviceId: u.deviceId,
      numExamples: u.sampleCount,
      receivedAt: now,
    };
    if (v.verdict === 'rejected') {
      this.store.insertUpdate(
        { ...base, verdict: 'rejected', reason: v.reason, detail: v.detail, norm: null },
        null,
      );
      this.metrics.updates.inc({ verdict: 'rejected', reason: v.reason });
      this.logger.warn({ roundId: u.roundId, updateId: u.updateId, reason: v.reason }, 'update rejected');
      return;
    }
    const quorumMet = this.store.transaction(() => {
      this.store.insertUpdate(
        { ...base, verdict: 'accepted', reason: null, detail: null, norm: v.norm },
        u.payload,
      );
      const met = this.store.counts(u.roundId).accepted >= round!.settings.quorum;
      if (met) this.store.setQuorumMet(u.roundId, now);
      return met;
    });
    this.metrics.updates.inc({ verdict: 'accepted', reason: 'none' });
    if (this.store.counts(u.roundId).accepted === Math.ceil(round!.settings.quorum / 2))
      this.faultPoint('intake-half');
    if (quorumMet && round!.settings.graceMs === 0) await this.tick();
  }

  /** Closes rounds past quorum + grace or their deadline, and resumes any unfinished step. */
  async tick(now = Date.now()): Promise<void> {
    if (this.stopping) return;
    for (const round of this.store.unfinished()) {
      if (this.busy.has(round.roundId)) continue;
      this.busy.add(round.roundId);
      try {
        if (round.state === 'OPEN') {
          const { accepted } = this.store.counts(round.roundId);
          const quorumDue = round.quorumMetAt !== null && now >= round.quorumMetAt + round.settings.graceMs;
          if (quorumDue || now >= round.settings.deadline)
            await this.closeRound(round, quorumDue ? 'QUORUM' : 'DEADLINE', accepted, now);
          else if (!round.openedPublished) await this.publishOpened(round);
        } else await this.resume(round);
      } catch (error) {
        this.logger.error(
          { roundId: round.roundId, err: error },
          'round step failed; retried on the next tick',
        );
      } finally {
        this.busy.delete(round.roundId);
      }
    }
  }

  private async closeRound(
    round: RoundRow,
    reason: 'QUORUM' | 'DEADLINE',
    accepted: number,
    now: number,
  ): Promise<void> {
    const enough = accepted >= round.settings.quorum;
    const detail = enough ? null : `${accepted} of ${round.settings.quorum} updates by the deadline`;
    if (
      !this.store.markClosed(round.roundId, enough ? 'CLOSED' : 'FAILED', reason, detail, randomUUID(), now)
    )
      return;
    if (!enough) this.metrics.rounds.inc({ outcome: 'failed' });
    await this.resume(this.get(round.roundId));
  }

  /** The steps after closing, each skipped when already done (crash recovery runs exactly this). */
  private async resume(round: RoundRow): Promise<void> {
    if (!round.openedPublished) await this.publishOpened(round);
    if (round.closedEventId && !round.closedPublished) {
      const c = this.store.counts(round.roundId);
      await this.publish(round, round.closedEventId, round.closedAt ?? Date.now(), {
        'io.edgefl.fl.RoundClosed': {
          reason: round.closeReason ?? 'ABORTED',
          selectedCount: round.settings.selectedDevices.length,
          receivedCount: c.received,
          acceptedCount: c.accepted,
          rejectedCount: c.rejected,
          detail: round.closeDetail,
        },
      });
      this.store.markPublished(round.roundId, 'closed');
    }
    if (round.state === 'CLOSED') {
      await this.aggregate(round);
      round = this.get(round.roundId);
    }
    if (round.state === 'AGGREGATED') await this.publishResult(round);
    if (round.state === 'CANCELLED' || round.state === 'FAILED' || this.get(round.roundId).state === 'DONE') {
      await this.keys.deleteSealKey(round.sealKeyName).catch(() => undefined);
      this.store.dropPayloads(round.roundId);
    }
  }

  private async aggregate(round: RoundRow): Promise<void> {
    const stop = this.metrics.aggregationSeconds.startTimer();
    const base = f32ToLayers(this.store.baseWeights(round.roundId), round.shape);
    try {
      const out = await aggregateRound(
        round,
        this.store,
        base,
        (row, payload) => this.keys.open(round.sealKeyName, payload, sealInfo(round.roundId), row.deviceId),
        this.config.own.maxHeldUpdates,
        (added, total) => {
          if (added === Math.ceil(total / 2)) this.faultPoint('aggregation-half');
        },
      );
      const bytes = layersToF32(out.weights);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const uri =
        bytes.byteLength > this.config.own.inlineMaxBytes
          ? await this.writeArtifact(round.roundId, bytes)
          : null;
      const c = this.store.counts(round.roundId);
      this.store.saveResult(
        round.roundId,
        {
          participants: out.participants,
          sha256,
          sizeBytes: bytes.byteLength,
          uri,
          metrics: {
            acceptedUpdates: c.accepted,
            rejectedUpdates: c.rejected,
            selectedDevices: round.settings.selectedDevices.length,
            keptByRule: out.selected.length,
            epsilonTotal: round.epsilonTotal,
          },
        },
        bytes,
        randomUUID(),
        out.cosines,
      );
      this.logger.info(
        { roundId: round.roundId, participants: out.participants.length, sha256 },
        'round aggregated',
      );
      this.faultPoint('result-stored');
    } catch (error) {
      if (!(
        error instanceof TooManyHeldUpdatesError ||
        (error as Error).name === 'InvalidUpdateError' ||
        (error as Error).name === 'InvalidParameterError'
      ))
        throw error;
      this.store.failAggregation(round.roundId, (error as Error).message);
      this.metrics.rounds.inc({ outcome: 'failed' });
    } finally {
      stop();
    }
  }

  /** The crash tests' fault injection (AGGREGATOR_FAULT_KILL_AT): a real SIGKILL, at a known step. */
  private faultPoint(point: NonNullable<AggregatorConfig['own']['faultKillAt']>): void {
    if (this.config.own.faultKillAt === point) process.kill(process.pid, 'SIGKILL');
  }

  /** Writes the weights atomically (temp file + rename) under the artifact directory; returns its file:// URI. */
  private async writeArtifact(roundId: string, bytes: Buffer): Promise<string> {
    const dir = this.config.own.artifactDir;
    await mkdir(dir, { recursive: true });
    const name = `${createHash('sha256').update(roundId).digest('hex').slice(0, 32)}.f32`;
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    await writeFile(tmp, bytes, { flush: true });
    await rename(tmp, join(dir, name));
    return pathToFileURL(join(dir, name)).href;
  }

  private async publishResult(round: RoundRow): Promise<void> {
    const result = round.result!;
    const weights = result.uri
      ? { uri: result.uri, sha256: result.sha256, sizeBytes: result.sizeBytes }
      : Buffer.from(this.store.resultWeights(round.roundId)!);
    await this.publish(round, round.resultEventId!, Date.now(), {
      'io.edgefl.fl.RoundResult': {
        baseVersion: round.settings.baseVersion,
        weights,
        participants: result.participants,
        epsilonSpent: round.epsilon,
        deltaSpent: round.settings.dp.mode === 'none' ? 0 : round.settings.dp.delta,
        metrics: result.metrics,
      },
    });
    this.store.markPublished(round.roundId, 'result');
    this.metrics.rounds.inc({ outcome: 'succeeded' });
  }

  private async publishOpened(round: RoundRow): Promise<void> {
    const s = round.settings;
    const key = await this.keys.sealPublicKey(round.sealKeyName);
    await this.publish(round, round.openedEventId, round.openedAt, {
      'io.edgefl.fl.RoundOpened': {
        baseVersion: s.baseVersion,
        selectedDevices: s.selectedDevices,
        quorum: s.quorum,
        deadline: s.deadline,
        training: {
          localEpochs: s.training.localEpochs,
          batchSize: s.training.batchSize,
          learningRate: s.training.learningRate,
        },
        dp: {
          clipNorm: s.dp.clipNorm,
          noiseMultiplier: s.dp.noiseMultiplier,
          mode: s.dp.mode === 'local' ? 'LOCAL' : 'CENTRAL',
          delta: s.dp.delta,
        },
        secureAggregation: {
          mode: 'HPKE',
          threshold: 0,
          roundPublicKey: Buffer.from(key.publicKey),
          roundKeyId: key.keyId,
        },
        strategy: s.strategy,
        strategyParams: s.strategyParams,
      },
    });
    this.store.markPublished(round.roundId, 'opened');
  }

  private async publish(
    round: RoundRow,
    eventId: string,
    at: number,
    event: RoundEvent['event'],
  ): Promise<void> {
    const value: RoundEvent = {
      eventId,
      tenant: round.tenant,
      roundId: round.roundId,
      modelId: round.modelId,
      occurredAt: at,
      event,
    };
    await this.bus.publish(ROUND_TOPIC, [{ value }]);
  }
}
