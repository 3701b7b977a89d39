import { AsyncLocalStorage } from 'node:async_hooks';
import type { Kysely, Selectable, Transaction } from 'kysely';
import { isUniqueViolation, StoreConflictError } from './errors.js';
import type { DatabaseKind } from './migrations.js';
import {
  LIVE_STATES,
  type BaselineSlis,
  type Delta,
  type Device,
  type DeviceRollout,
  type DeviceRolloutState,
  type GateSpec,
  type HealthReport,
  type Model,
  type ModelVersion,
  type OutboxEvent,
  type Release,
  type ReleaseTransition,
  type RollForward,
  type RolloutState,
  type StageSpec,
  type Targeting,
  type Tenant,
  type VersionStatus,
} from './records.js';
import type {
  DeltaTable,
  DeviceRolloutTable,
  DeviceTable,
  HealthReportTable,
  ModelTable,
  RegistryDatabase,
  ReleaseTable,
  TenantTable,
  VersionTable,
} from './schema.js';

const json = <T>(text: string | null, fallback: T): T => (text === null ? fallback : (JSON.parse(text) as T));

const toTenant = (r: Selectable<TenantTable>): Tenant => ({
  id: r.id,
  name: r.name,
  baseline:
    r.baseline_model_id !== null && r.baseline_version !== null
      ? { modelId: r.baseline_model_id, version: r.baseline_version }
      : null,
  createdAt: r.created_at,
});

const toModel = (r: Selectable<ModelTable>): Model => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  spec: json<unknown>(r.spec, null),
  deltaWindow: r.delta_window,
  stableVersion: r.stable_version,
  createdAt: r.created_at,
});

const toVersion = (r: Selectable<VersionTable>): ModelVersion => ({
  modelId: r.model_id,
  version: r.version,
  tenantId: r.tenant_id,
  label: r.label,
  parentVersion: r.parent_version,
  origin: r.origin,
  roundId: r.round_id,
  status: r.status,
  sha256: r.sha256,
  sizeBytes: r.size_bytes,
  format: r.format,
  chunkSize: r.chunk_size,
  merkleRoot: r.merkle_root,
  blobKey: r.blob_key,
  wrappedKey: r.wrapped_key,
  signingKeyId: r.signing_key_id,
  signature: r.signature,
  metrics: json<Record<string, number>>(r.metrics, {}),
  provenance: json<Record<string, unknown>>(r.provenance, {}),
  createdAt: r.created_at,
});

const toDelta = (r: Selectable<DeltaTable>): Delta => ({
  modelId: r.model_id,
  fromVersion: r.from_version,
  toVersion: r.to_version,
  sha256: r.sha256,
  sizeBytes: r.size_bytes,
  mode: r.mode,
  blobKey: r.blob_key,
  wrappedKey: r.wrapped_key,
  createdAt: r.created_at,
});

const toDevice = (r: Selectable<DeviceTable>): Device => ({
  id: r.id,
  tenantId: r.tenant_id,
  publicKey: r.public_key,
  modelId: r.model_id,
  group: r.group_name,
  hardwareClass: r.hardware_class,
  ramBytes: r.ram_bytes,
  firmware: r.firmware,
  attributes: json<Record<string, string>>(r.attributes, {}),
  currentVersion: r.current_version,
  lastSeenAt: r.last_seen_at,
  createdAt: r.created_at,
});

const toRelease = (r: Selectable<ReleaseTable>): Release => ({
  id: r.id,
  tenantId: r.tenant_id,
  modelId: r.model_id,
  version: r.version,
  previousVersion: r.previous_version,
  state: r.state,
  stageIndex: r.stage_index,
  stages: json<StageSpec[]>(r.stages, []),
  gates: json<GateSpec>(r.gates, {} as GateSpec),
  targeting: json<Targeting>(r.targeting, {
    minRamBytes: null,
    firmwareRange: null,
    hardwareClasses: [],
    groups: [],
  }),
  baseline: json<BaselineSlis | null>(r.baseline, null),
  rollForward: json<RollForward | null>(r.roll_forward, null),
  stageStartedAt: r.stage_started_at,
  reason: r.reason,
  revision: r.revision,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toDeviceRollout = (r: Selectable<DeviceRolloutTable>): DeviceRollout => ({
  releaseId: r.release_id,
  deviceId: r.device_id,
  stageIndex: r.stage_index,
  state: r.state,
  startedAt: r.started_at,
  deadlineAt: r.deadline_at,
  updatedAt: r.updated_at,
});

const toHealth = (r: Selectable<HealthReportTable>): HealthReport => ({
  eventId: r.event_id,
  releaseId: r.release_id,
  stage: r.stage,
  windowStart: r.window_start,
  windowEnd: r.window_end,
  devicesReporting: r.devices_reporting,
  otaFailureRate: r.ota_failure_rate,
  inferenceErrorRate: r.inference_error_rate,
  p95LatencyMs: r.p95_latency_ms,
  accuracy: r.accuracy,
  meanConfidence: r.mean_confidence,
  driftScore: r.drift_score,
  receivedAt: r.received_at,
});

/** Runs an insert; a uniqueness violation becomes a StoreConflictError with `what` as its message. */
async function insertOrConflict(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (isUniqueViolation(error)) throw new StoreConflictError(what);
    throw error;
  }
}

/** The transaction a root store's calls join while `fn` of its transaction() runs (and everything it awaits). */
interface AmbientTransaction {
  root: RegistryStore;
  tx: RegistryStore;
  open: boolean;
}
const ambient = new AsyncLocalStorage<AmbientTransaction>();

/**
 * The registry's one repository layer over Kysely: the same code and migrations for SQLite and PostgreSQL.
 * `transaction(fn)` runs `fn` with a store bound to one transaction; while it runs, calls on the root store (from
 * the services fn calls, which hold the root store) and nested transaction() calls join it.
 */
export class RegistryStore {
  private readonly own: Kysely<RegistryDatabase>;

  constructor(
    db: Kysely<RegistryDatabase>,
    readonly kind: DatabaseKind,
    private readonly inTransaction = false,
  ) {
    this.own = db;
  }

  /** The query builder: the ambient transaction's inside transaction(fn), else this store's own. */
  get db(): Kysely<RegistryDatabase> {
    if (!this.inTransaction) {
      const current = ambient.getStore();
      if (current?.open && current.root === this) return current.tx.own;
    }
    return this.own;
  }

  async transaction<T>(fn: (store: RegistryStore) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const current = ambient.getStore();
    if (current?.open && current.root === this) return fn(current.tx);
    return this.own.transaction().execute(async (trx: Transaction<RegistryDatabase>) => {
      const scope: AmbientTransaction = {
        root: this,
        tx: new RegistryStore(trx, this.kind, true),
        open: true,
      };
      try {
        return await ambient.run(scope, () => fn(scope.tx));
      } finally {
        scope.open = false;
      }
    });
  }

  /** Runs fn outside any ambient transaction: background work started inside one (a relay drain) must not join it. */
  static outsideTransaction<T>(fn: () => T): T {
    return ambient.exit(fn);
  }

  /**
   * The transactional inbox: records `eventId` as processed by `group` and runs `effects` in one transaction, so a
   * replayed event (a crash before the bus committed its offset) is skipped exactly. Resolves false, running
   * nothing, when the group already processed it; a failing `effects` rolls the mark back with them.
   */
  async inbox(
    group: string,
    eventId: string,
    effects: (tx: RegistryStore) => Promise<void>,
  ): Promise<boolean> {
    return this.transaction(async (tx) => {
      const inserted = await tx.db
        .insertInto('inbox')
        .values({ grp: group, event_id: eventId, processed_at: Date.now() })
        .onConflict((oc) => oc.columns(['grp', 'event_id']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      await effects(tx);
      return true;
    });
  }

  // ── tenants ─────────────────────────────────────────────────────────────────────────────────────────────────
  async createTenant(tenant: { id: string; name: string; createdAt: number }): Promise<Tenant> {
    await insertOrConflict(`tenant ${tenant.id} exists`, () =>
      this.db
        .insertInto('tenants')
        .values({
          id: tenant.id,
          name: tenant.name,
          baseline_model_id: null,
          baseline_version: null,
          created_at: tenant.createdAt,
        })
        .execute(),
    );
    return { ...tenant, baseline: null };
  }

  async getTenant(id: string): Promise<Tenant | null> {
    const row = await this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toTenant(row) : null;
  }

  async listTenants(): Promise<Tenant[]> {
    return (await this.db.selectFrom('tenants').selectAll().orderBy('id').execute()).map(toTenant);
  }

  async setTenantBaseline(id: string, baseline: { modelId: string; version: number } | null): Promise<void> {
    await this.db
      .updateTable('tenants')
      .set({ baseline_model_id: baseline?.modelId ?? null, baseline_version: baseline?.version ?? null })
      .where('id', '=', id)
      .execute();
  }

  // ── models ──────────────────────────────────────────────────────────────────────────────────────────────────
  async createModel(model: Omit<Model, 'stableVersion'>): Promise<Model> {
    await insertOrConflict(`model ${model.id} exists`, () =>
      this.db
        .insertInto('models')
        .values({
          id: model.id,
          tenant_id: model.tenantId,
          name: model.name,
          spec: model.spec === null || model.spec === undefined ? null : JSON.stringify(model.spec),
          delta_window: model.deltaWindow,
          stable_version: null,
          created_at: model.createdAt,
        })
        .execute(),
    );
    return { ...model, stableVersion: null };
  }

  async getModel(id: string): Promise<Model | null> {
    const row = await this.db.selectFrom('models').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toModel(row) : null;
  }

  async listModels(tenantId?: string): Promise<Model[]> {
    let query = this.db.selectFrom('models').selectAll();
    if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
    return (await query.orderBy('id').execute()).map(toModel);
  }

  async setStableVersion(modelId: string, version: number | null): Promise<void> {
    await this.db.updateTable('models').set({ stable_version: version }).where('id', '=', modelId).execute();
  }

  // ── versions ────────────────────────────────────────────────────────────────────────────────────────────────
  /** Inserts a version; StoreConflictError when that version number (or round) already exists. */
  async insertVersion(v: ModelVersion): Promise<void> {
    await insertOrConflict(`version ${v.version} of model ${v.modelId} exists`, () =>
      this.db
        .insertInto('versions')
        .values({
          model_id: v.modelId,
          version: v.version,
          tenant_id: v.tenantId,
          label: v.label,
          parent_version: v.parentVersion,
          origin: v.origin,
          round_id: v.roundId,
          status: v.status,
          sha256: v.sha256,
          size_bytes: v.sizeBytes,
          format: v.format,
          chunk_size: v.chunkSize,
          merkle_root: v.merkleRoot,
          blob_key: v.blobKey,
          wrapped_key: v.wrappedKey,
          signing_key_id: v.signingKeyId,
          signature: v.signature,
          metrics: JSON.stringify(v.metrics),
          provenance: JSON.stringify(v.provenance),
          created_at: v.createdAt,
        })
        .execute(),
    );
  }

  async getVersion(modelId: string, version: number): Promise<ModelVersion | null> {
    const row = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('model_id', '=', modelId)
      .where('version', '=', version)
      .executeTakeFirst();
    return row ? toVersion(row) : null;
  }

  async versionForRound(modelId: string, roundId: string): Promise<ModelVersion | null> {
    const row = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('model_id', '=', modelId)
      .where('round_id', '=', roundId)
      .executeTakeFirst();
    return row ? toVersion(row) : null;
  }

  async listVersions(modelId: string): Promise<ModelVersion[]> {
    const rows = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('model_id', '=', modelId)
      .orderBy('version')
      .execute();
    return rows.map(toVersion);
  }

  async latestVersionNumber(modelId: string): Promise<number> {
    const row = await this.db
      .selectFrom('versions')
      .select((eb) => eb.fn.max('version').as('max'))
      .where('model_id', '=', modelId)
      .executeTakeFirst();
    return Number(row?.max ?? 0);
  }

  async setVersionStatus(modelId: string, version: number, status: VersionStatus): Promise<boolean> {
    const result = await this.db
      .updateTable('versions')
      .set({ status })
      .where('model_id', '=', modelId)
      .where('version', '=', version)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  // ── deltas ──────────────────────────────────────────────────────────────────────────────────────────────────
  async insertDelta(d: Delta): Promise<void> {
    await insertOrConflict(`delta ${d.fromVersion}→${d.toVersion} of model ${d.modelId} exists`, () =>
      this.db
        .insertInto('deltas')
        .values({
          model_id: d.modelId,
          from_version: d.fromVersion,
          to_version: d.toVersion,
          sha256: d.sha256,
          size_bytes: d.sizeBytes,
          mode: d.mode,
          blob_key: d.blobKey,
          wrapped_key: d.wrappedKey,
          created_at: d.createdAt,
        })
        .execute(),
    );
  }

  async listDeltas(modelId: string, toVersion?: number): Promise<Delta[]> {
    let query = this.db.selectFrom('deltas').selectAll().where('model_id', '=', modelId);
    if (toVersion !== undefined) query = query.where('to_version', '=', toVersion);
    return (await query.orderBy('from_version').orderBy('to_version').execute()).map(toDelta);
  }

  async getDelta(modelId: string, fromVersion: number, toVersion: number): Promise<Delta | null> {
    const row = await this.db
      .selectFrom('deltas')
      .selectAll()
      .where('model_id', '=', modelId)
      .where('from_version', '=', fromVersion)
      .where('to_version', '=', toVersion)
      .executeTakeFirst();
    return row ? toDelta(row) : null;
  }

  // ── devices ─────────────────────────────────────────────────────────────────────────────────────────────────
  async insertDevice(d: Device): Promise<void> {
    await insertOrConflict(`device ${d.id} exists`, () =>
      this.db
        .insertInto('devices')
        .values({
          id: d.id,
          tenant_id: d.tenantId,
          public_key: d.publicKey,
          model_id: d.modelId,
          group_name: d.group,
          hardware_class: d.hardwareClass,
          ram_bytes: d.ramBytes,
          firmware: d.firmware,
          attributes: JSON.stringify(d.attributes),
          current_version: d.currentVersion,
          last_seen_at: d.lastSeenAt,
          created_at: d.createdAt,
        })
        .execute(),
    );
  }

  async getDevice(id: string): Promise<Device | null> {
    const row = await this.db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toDevice(row) : null;
  }

  async listDevices(tenantId: string, limit = 1000, after = ''): Promise<Device[]> {
    const rows = await this.db
      .selectFrom('devices')
      .selectAll()
      .where('tenant_id', '=', tenantId)
      .where('id', '>', after)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toDevice);
  }

  async updateDevice(
    id: string,
    patch: Partial<
      Pick<
        Device,
        'group' | 'hardwareClass' | 'ramBytes' | 'firmware' | 'modelId' | 'currentVersion' | 'lastSeenAt'
      >
    >,
  ): Promise<void> {
    const set: Partial<Selectable<DeviceTable>> = {};
    if (patch.group !== undefined) set.group_name = patch.group;
    if (patch.hardwareClass !== undefined) set.hardware_class = patch.hardwareClass;
    if (patch.ramBytes !== undefined) set.ram_bytes = patch.ramBytes;
    if (patch.firmware !== undefined) set.firmware = patch.firmware;
    if (patch.modelId !== undefined) set.model_id = patch.modelId;
    if (patch.currentVersion !== undefined) set.current_version = patch.currentVersion;
    if (patch.lastSeenAt !== undefined) set.last_seen_at = patch.lastSeenAt;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('devices').set(set).where('id', '=', id).execute();
  }

  /** Records a device's one-time authentication assertion id; false when it was used before (a replay). */
  async useAssertion(jti: string, deviceId: string, expiresAt: number, now: number): Promise<boolean> {
    await this.db.deleteFrom('used_assertions').where('expires_at', '<', now).execute();
    try {
      await this.db
        .insertInto('used_assertions')
        .values({ jti, device_id: deviceId, expires_at: expiresAt })
        .execute();
      return true;
    } catch (error) {
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

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

  // ── outbox (events published on the bus after the transaction that caused them commits) ────────────────────
  async enqueueEvent(e: Omit<OutboxEvent, 'id'>): Promise<void> {
    await this.db
      .insertInto('outbox')
      .values({
        topic: e.topic,
        record_key: e.key,
        tenant_id: e.tenantId,
        event_id: e.eventId,
        payload: e.payload,
        created_at: e.createdAt,
        published_at: null,
      })
      .execute();
  }

  async pendingEvents(limit: number): Promise<OutboxEvent[]> {
    const rows = await this.db
      .selectFrom('outbox')
      .selectAll()
      .where('published_at', 'is', null)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      topic: r.topic,
      key: r.record_key,
      tenantId: r.tenant_id,
      eventId: r.event_id,
      payload: r.payload,
      createdAt: r.created_at,
    }));
  }

  async markPublished(ids: readonly number[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db
      .updateTable('outbox')
      .set({ published_at: now })
      .where('id', 'in', [...ids])
      .execute();
  }

  async listEvents(filter: { topic?: string; key?: string; limit?: number } = {}): Promise<OutboxEvent[]> {
    let query = this.db.selectFrom('outbox').selectAll();
    if (filter.topic !== undefined) query = query.where('topic', '=', filter.topic);
    if (filter.key !== undefined) query = query.where('record_key', '=', filter.key);
    const rows = await query
      .orderBy('id')
      .limit(filter.limit ?? 1000)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      topic: r.topic,
      key: r.record_key,
      tenantId: r.tenant_id,
      eventId: r.event_id,
      payload: r.payload,
      createdAt: r.created_at,
    }));
  }
}
