import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from '@edgefl/service-kit';
import {
  LIVE_STATES,
  type DeviceRollout,
  type DeviceRolloutState,
  type HealthReport,
  type Release,
  type ReleaseTransition,
  type RolloutState,
} from './records.js';
import { insertOrConflict, toDeviceRollout, toHealth, toRelease } from './rows.js';
import type { ReleaseTable, RegistryDatabase } from './schema.js';

/** Releases and their transitions, per-device progress of a rollout, and rollout-health windows. */
export class ReleaseStore {
  constructor(private readonly db: Kysely<RegistryDatabase>) {}

  // ── releases ────────────────────────────────────────────────────────────────────────────────────────────────
  /** Inserts a release; StoreConflictError when the model already has a live release. */
  async insertRelease(r: Release): Promise<void> {
    await insertOrConflict(`model ${r.modelId} already has a live release`, () =>
      this.db
        .insertInto('releases')
        .values({
          id: r.id,
          tenant_id: r.tenantId,
          model_id: r.modelId,
          version: r.version,
          previous_version: r.previousVersion,
          state: r.state,
          stage_index: r.stageIndex,
          stages: JSON.stringify(r.stages),
          gates: JSON.stringify(r.gates),
          targeting: JSON.stringify(r.targeting),
          baseline: r.baseline === null ? null : JSON.stringify(r.baseline),
          roll_forward: r.rollForward === null ? null : JSON.stringify(r.rollForward),
          stage_started_at: r.stageStartedAt,
          reason: r.reason,
          revision: r.revision,
          created_at: r.createdAt,
          updated_at: r.updatedAt,
        })
        .execute(),
    );
  }

  async getRelease(id: string): Promise<Release | null> {
    const row = await this.db.selectFrom('releases').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toRelease(row) : null;
  }

  async listReleases(
    filter: { modelId?: string; tenantId?: string; states?: readonly RolloutState[] } = {},
  ): Promise<Release[]> {
    let query = this.db.selectFrom('releases').selectAll();
    if (filter.modelId !== undefined) query = query.where('model_id', '=', filter.modelId);
    if (filter.tenantId !== undefined) query = query.where('tenant_id', '=', filter.tenantId);
    if (filter.states !== undefined) query = query.where('state', 'in', [...filter.states]);
    return (await query.orderBy('created_at').orderBy('id').execute()).map(toRelease);
  }

  async liveRelease(modelId: string): Promise<Release | null> {
    const row = await this.db
      .selectFrom('releases')
      .selectAll()
      .where('model_id', '=', modelId)
      .where('state', 'in', [...LIVE_STATES])
      .executeTakeFirst();
    return row ? toRelease(row) : null;
  }

  /** Compare-and-set on `revision`: false when someone else changed the release first. */
  async updateRelease(
    id: string,
    expectedRevision: number,
    patch: Partial<
      Pick<Release, 'state' | 'stageIndex' | 'stageStartedAt' | 'reason' | 'baseline' | 'rollForward'>
    > & {
      updatedAt: number;
    },
  ): Promise<boolean> {
    const set: Partial<Selectable<ReleaseTable>> = {
      revision: expectedRevision + 1,
      updated_at: patch.updatedAt,
    };
    if (patch.state !== undefined) set.state = patch.state;
    if (patch.stageIndex !== undefined) set.stage_index = patch.stageIndex;
    if (patch.stageStartedAt !== undefined) set.stage_started_at = patch.stageStartedAt;
    if (patch.reason !== undefined) set.reason = patch.reason;
    if (patch.baseline !== undefined)
      set.baseline = patch.baseline === null ? null : JSON.stringify(patch.baseline);
    if (patch.rollForward !== undefined)
      set.roll_forward = patch.rollForward === null ? null : JSON.stringify(patch.rollForward);
    const result = await this.db
      .updateTable('releases')
      .set(set)
      .where('id', '=', id)
      .where('revision', '=', expectedRevision)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async insertTransition(t: ReleaseTransition): Promise<void> {
    await this.db
      .insertInto('release_transitions')
      .values({
        release_id: t.releaseId,
        seq: t.seq,
        from_state: t.fromState,
        to_state: t.toState,
        stage_name: t.stage.name,
        percentage: t.stage.percentage,
        reason: t.reason,
        at: t.at,
      })
      .execute();
  }

  async listTransitions(releaseId: string): Promise<ReleaseTransition[]> {
    const rows = await this.db
      .selectFrom('release_transitions')
      .selectAll()
      .where('release_id', '=', releaseId)
      .orderBy('seq')
      .execute();
    return rows.map((r) => ({
      releaseId: r.release_id,
      seq: r.seq,
      fromState: r.from_state as RolloutState,
      toState: r.to_state as RolloutState,
      stage: { name: r.stage_name, percentage: r.percentage },
      reason: r.reason,
      at: r.at,
    }));
  }

  // ── per-device progress of a rollout ────────────────────────────────────────────────────────────────────────
  /** Starts tracking a device in a release (idempotent: an existing entry is kept). */
  async startDeviceRollout(entry: DeviceRollout): Promise<void> {
    await this.db
      .insertInto('device_rollouts')
      .values({
        release_id: entry.releaseId,
        device_id: entry.deviceId,
        stage_index: entry.stageIndex,
        state: entry.state,
        started_at: entry.startedAt,
        deadline_at: entry.deadlineAt,
        updated_at: entry.updatedAt,
      })
      .onConflict((oc) => oc.columns(['release_id', 'device_id']).doNothing())
      .execute();
  }

  async getDeviceRollout(releaseId: string, deviceId: string): Promise<DeviceRollout | null> {
    const row = await this.db
      .selectFrom('device_rollouts')
      .selectAll()
      .where('release_id', '=', releaseId)
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return row ? toDeviceRollout(row) : null;
  }

  /** Moves a device's entry to a final state; only an in-progress entry moves (a late report after a timeout does not). */
  async finishDeviceRollout(
    releaseId: string,
    deviceId: string,
    state: DeviceRolloutState,
    now: number,
  ): Promise<boolean> {
    const result = await this.db
      .updateTable('device_rollouts')
      .set({ state, updated_at: now })
      .where('release_id', '=', releaseId)
      .where('device_id', '=', deviceId)
      .where('state', '=', 'in_progress')
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Times out every in-progress device whose deadline passed; returns the releases touched. */
  async timeOutDevices(now: number): Promise<string[]> {
    const expired = await this.db
      .selectFrom('device_rollouts')
      .select(['release_id', 'device_id'])
      .where('state', '=', 'in_progress')
      .where('deadline_at', '<=', now)
      .limit(1000)
      .execute();
    if (expired.length === 0) return [];
    await this.db
      .updateTable('device_rollouts')
      .set({ state: 'timed_out', updated_at: now })
      .where('state', '=', 'in_progress')
      .where('deadline_at', '<=', now)
      .execute();
    return [...new Set(expired.map((e) => e.release_id))];
  }

  async deviceRolloutCounts(
    releaseId: string,
    stageIndex?: number,
  ): Promise<Record<DeviceRolloutState, number>> {
    let query = this.db
      .selectFrom('device_rollouts')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('release_id', '=', releaseId);
    if (stageIndex !== undefined) query = query.where('stage_index', '=', stageIndex);
    const rows = await query.groupBy('state').execute();
    const counts = { in_progress: 0, succeeded: 0, failed: 0, timed_out: 0 };
    for (const row of rows) counts[row.state] = Number(row.n);
    return counts;
  }

  // ── rollout health ──────────────────────────────────────────────────────────────────────────────────────────
  /** Stores a health report; false when its event id was seen before (at-least-once delivery, replays). */
  async insertHealth(h: HealthReport): Promise<boolean> {
    try {
      await this.db
        .insertInto('health_reports')
        .values({
          event_id: h.eventId,
          release_id: h.releaseId,
          stage: h.stage,
          window_start: h.windowStart,
          window_end: h.windowEnd,
          devices_reporting: h.devicesReporting,
          ota_failure_rate: h.otaFailureRate,
          inference_error_rate: h.inferenceErrorRate,
          p95_latency_ms: h.p95LatencyMs,
          accuracy: h.accuracy,
          mean_confidence: h.meanConfidence,
          drift_score: h.driftScore,
          baseline_version: h.baselineVersion,
          baseline_devices_reporting: h.baselineDevicesReporting,
          baseline_inference_error_rate: h.baselineInferenceErrorRate,
          baseline_p95_latency_ms: h.baselineP95LatencyMs,
          baseline_accuracy: h.baselineAccuracy,
          baseline_mean_confidence: h.baselineMeanConfidence,
          received_at: h.receivedAt,
        })
        .execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  /** The most recent health window of a release's stage that ended after `since`. */
  async latestHealth(releaseId: string, stage: string, since: number): Promise<HealthReport | null> {
    const row = await this.db
      .selectFrom('health_reports')
      .selectAll()
      .where('release_id', '=', releaseId)
      .where('stage', '=', stage)
      .where('window_end', '>=', since)
      .orderBy('window_end', 'desc')
      .orderBy('received_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row ? toHealth(row) : null;
  }

  async listHealth(releaseId: string): Promise<HealthReport[]> {
    const rows = await this.db
      .selectFrom('health_reports')
      .selectAll()
      .where('release_id', '=', releaseId)
      .orderBy('window_end')
      .execute();
    return rows.map(toHealth);
  }
}
