import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { KAFKA_TOPICS, type FlUpdate, type RoundEvent, type SecAggMessage } from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import {
  BudgetExceededError,
  PrivacyBudgetLedger,
  computeEpsilon,
  createRule,
  robustOverBuckets,
  secureNormal,
} from '@edgefl/fl';
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
import { toRoundSettings, type StartRoundRequest } from './round-settings.js';
import { RoundStore, type RoundRow, type RoundState } from './round-store.js';
import { RoundMetrics } from './rounds.metrics.js';
import { planSecureRound, SecureRounds, type SecAggState, type SecureOutcome } from './secure-rounds.js';

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
  private readonly secure: SecureRounds;

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
    this.secure = new SecureRounds(
      store,
      async (events) => {
        await bus.publish(
          KAFKA_TOPICS.flSecAgg.name,
          events.map((value) => ({ value })),
        );
      },
      this.metrics,
      logger,
    );
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
    const secure = settings.privacyMode === 'secure-aggregation';
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
    // secure aggregation masks the updates: no HPKE round key (its plan is refused with 400 before anything else)
    const plan = secure
      ? planSecureRound(
          settings,
          base.layers.map((l) => l.length),
          now,
        )
      : null;
    const sealKey = secure ? null : await this.keys.createSealKey(sealKeyName);
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
        if (plan) this.store.saveSecAggState(roundId, plan);
      });
      if (plan) this.secure.prepare(row, plan);
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
      { roundId, modelId: row.modelId, keyId: sealKey?.keyId ?? null, quorum: settings.quorum, secure },
      'round opened',
    );
    await this.publishOpened(row);
    if (plan) await this.secure.begin(roundId);
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
    this.secure.forget(roundId);
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
    const sa = round.settings.privacyMode === 'secure-aggregation' ? this.secure.state(roundId) : null;
    const survivors = sa ? survivorsOf(sa) : null;
    return {
      roundId,
      state: round.state,
      counts: this.countsOf(round),
      participants: survivors ?? accepted.map((u) => u.deviceId),
      dropouts: survivors
        ? round.settings.selectedDevices.filter((d) => !survivors.includes(d))
        : round.settings.selectedDevices.filter((d) => !received.has(d)),
      secureAggregation: sa && {
        phase: sa.phase,
        phaseDeadline: sa.phaseDeadline,
        buckets: sa.buckets.map((b) => ({
          bucket: b.bucket,
          clients: b.clients,
          state: b.state,
          threshold: b.config.threshold,
          neighbours: b.config.neighbours,
          precisionBits: b.config.precisionBits,
          modulusBits: b.config.modulusBits,
          dropouts: b.dropouts,
          survivors: b.survivors,
          abort: b.abort,
        })),
        accepted: sa.accepted,
        refusals: sa.refusals,
      },
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

  /** One record of edgefl.fl.secagg.v1. */
  async secAggIntake(message: SecAggMessage): Promise<void> {
    await this.secure.receive(message);
  }

  /** Received / accepted / rejected: stored updates, or for a secure round masked inputs, survivors, refusals. */
  private countsOf(round: RoundRow): { received: number; accepted: number; rejected: number } {
    if (round.settings.privacyMode !== 'secure-aggregation') return this.store.counts(round.roundId);
    const sa = this.secure.state(round.roundId);
    if (!sa) return { received: 0, accepted: 0, rejected: 0 };
    const masked = sa.buckets.reduce(
      (a, b) =>
        a +
        (b.dropouts.MASKED_INPUT
          ? b.clients.length -
            b.dropouts.MASKED_INPUT.length -
            (b.dropouts.ADVERTISE_KEYS?.length ?? 0) -
            (b.dropouts.SHARE_KEYS?.length ?? 0)
          : 0),
      0,
    );
    return {
      received: masked,
      accepted: survivorsOf(sa).length,
      rejected: Object.values(sa.refusals).reduce((a, b) => a + b, 0),
    };
  }

  /** Drives a secure round's phases; closes it when the protocol ends, the deadline passes or this process restarted. */
  private async stepSecure(round: RoundRow, now: number): Promise<void> {
    const fail = async (reason: 'DEADLINE' | 'ABORTED', detail: string) => {
      this.secure.forget(round.roundId);
      if (this.store.markClosed(round.roundId, 'FAILED', reason, detail, randomUUID(), now)) {
        this.metrics.rounds.inc({ outcome: 'failed' });
        this.logger.warn({ roundId: round.roundId, detail }, 'secure-aggregation round failed');
      }
      await this.resume(this.get(round.roundId));
    };
    if (!this.secure.isLive(round.roundId)) {
      const phase = this.store.secAggState(round.roundId)?.phase ?? 'ADVERTISE_KEYS';
      return fail(
        'ABORTED',
        `the aggregator restarted during ${phase}: the protocol's state in flight is not kept across restarts, so the round aborts`,
      );
    }
    if (now >= round.settings.deadline)
      return fail('DEADLINE', `the deadline passed during ${this.secure.state(round.roundId)?.phase}`);
    const outcome = await this.secure.step(round, now);
    if (outcome === null) return;
    if (outcome === 'restarted') return fail('ABORTED', 'the aggregator restarted mid-protocol');
    this.secure.forget(round.roundId);
    const survivors = survivorsOf(outcome.state);
    if (outcome.results.length === 0 || survivors.length < round.settings.quorum) {
      const aborts = outcome.state.buckets
        .filter((b) => b.abort)
        .map((b) => `bucket ${b.bucket}: ${b.abort}`);
      return fail(
        'ABORTED',
        outcome.results.length === 0
          ? `secure aggregation aborted (${aborts.join('; ')})`
          : `${survivors.length} survivors, quorum ${round.settings.quorum}`,
      );
    }
    await this.saveSecureResult(round, outcome, now);
    await this.resume(this.get(round.roundId));
  }

  /**
   * The new weights from the unmasked sums: base + the survivors' mean (one instance), or base + the robust rule
   * over the bucket means (bucketed mode). Central DP adds N(0, (σ·C)²) to each coordinate of the unmasked sum
   * before dividing by the survivors: it protects the released model, not the sum the aggregator sees (local DP,
   * noise added on the device before masking, protects against the aggregator too).
   */
  private async saveSecureResult(round: RoundRow, outcome: SecureOutcome, now: number): Promise<void> {
    const stop = this.metrics.aggregationSeconds.startTimer();
    const { settings } = round;
    const base = f32ToLayers(this.store.baseWeights(round.roundId), round.shape);
    let delta: Float32Array[];
    let kept = outcome.results.length;
    if (settings.secureAggregation!.bucketSize === null) {
      const r = outcome.results[0]!;
      const n = r.survivors.length;
      const std = settings.dp.mode === 'central' ? settings.dp.noiseMultiplier * settings.dp.clipNorm : 0;
      const normal = secureNormal();
      delta = r.sum.map((layer) => Float32Array.from(layer, (v) => (std > 0 ? v + std * normal() : v) / n));
    } else {
      const out = robustOverBuckets(outcome.results, createRule(settings.strategy, settings.ruleParams));
      delta = out.weights.map((l) => Float32Array.from(l));
      if (out.selected) kept = out.selected.length;
    }
    const weights = base.map((b, l) => Float32Array.from(b, (v, j) => v + delta[l]![j]!));
    const bytes = layersToF32(weights);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const uri =
      bytes.byteLength > this.config.own.inlineMaxBytes
        ? await this.writeArtifact(round.roundId, bytes)
        : null;
    const survivors = survivorsOf(outcome.state);
    const dropped = (phase: keyof (typeof outcome.state.buckets)[number]['dropouts']) =>
      outcome.state.buckets.reduce((a, b) => a + (b.dropouts[phase]?.length ?? 0), 0);
    this.store.transaction(() => {
      if (!this.store.markClosed(round.roundId, 'CLOSED', 'QUORUM', null, randomUUID(), now)) return;
      this.store.saveResult(
        round.roundId,
        {
          participants: survivors,
          sha256,
          sizeBytes: bytes.byteLength,
          uri,
          metrics: {
            acceptedUpdates: survivors.length,
            rejectedUpdates: Object.values(outcome.state.refusals).reduce((a, b) => a + b, 0),
            selectedDevices: settings.selectedDevices.length,
            keptByRule: kept,
            epsilonTotal: round.epsilonTotal,
            secAggBuckets: outcome.state.buckets.length,
            secAggBucketsCompleted: outcome.results.length,
            secAggPrecisionBits: outcome.results[0]!.precisionBits,
            secAggDroppedAdvertiseKeys: dropped('ADVERTISE_KEYS'),
            secAggDroppedShareKeys: dropped('SHARE_KEYS'),
            secAggDroppedMaskedInput: dropped('MASKED_INPUT'),
            secAggDroppedConsistencyCheck: dropped('CONSISTENCY_CHECK'),
            secAggDroppedUnmasking: dropped('UNMASKING'),
          },
        },
        bytes,
        randomUUID(),
        new Map(),
      );
    });
    stop();
    this.logger.info(
      { roundId: round.roundId, survivors: survivors.length, sha256 },
      'secure round aggregated',
    );
  }

  /** Closes rounds past quorum + grace or their deadline, and resumes any unfinished step. */
  async tick(now = Date.now()): Promise<void> {
    if (this.stopping) return;
    for (const round of this.store.unfinished()) {
      if (this.busy.has(round.roundId)) continue;
      this.busy.add(round.roundId);
      try {
        if (round.state === 'OPEN' && round.settings.privacyMode === 'secure-aggregation') {
          if (!round.openedPublished) await this.publishOpened(round);
          await this.stepSecure(round, now);
        } else if (round.state === 'OPEN') {
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
      const c = this.countsOf(round);
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
    if (round.state === 'CLOSED' && round.settings.privacyMode === 'secure-aggregation') {
      // a secure round is stored CLOSED and AGGREGATED in one transaction: CLOSED alone means the sums were lost
      this.store.failAggregation(
        round.roundId,
        'the aggregator restarted before the unmasked sum was stored',
      );
      round = this.get(round.roundId);
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
    const secure = s.privacyMode === 'secure-aggregation';
    const key = secure ? null : await this.keys.sealPublicKey(round.sealKeyName);
    const threshold = secure ? (this.store.secAggState(round.roundId)?.buckets[0]?.config.threshold ?? 0) : 0;
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
        secureAggregation: key
          ? { mode: 'HPKE', threshold: 0, roundPublicKey: Buffer.from(key.publicKey), roundKeyId: key.keyId }
          : { mode: 'MASKED', threshold, roundPublicKey: null, roundKeyId: null },
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

/** Every completed bucket's survivors (U3), sorted: whose input is in the result. */
function survivorsOf(state: SecAggState): string[] {
  return state.buckets.flatMap((b) => b.survivors ?? []).sort();
}
