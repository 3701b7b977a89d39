import type { Kysely, Transaction } from 'kysely';
import type { DatabaseKind } from '@edgefl/service-kit';
import { decodeRollup, encodeRollup, type Resolution, type Rollup } from '../sli/rollup.js';
import type { TelemetryDatabase } from './schema.js';

type Db = Kysely<TelemetryDatabase>;

export interface DeviceRecord {
  deviceId: string;
  tenant: string;
  registeredAt: number | null;
  revokedAt: number | null;
  group: string;
  modelId: string | null;
  version: number | null;
  lastSeenAt: number | null;
  presence: 'ONLINE' | 'OFFLINE' | null;
  presenceAt: number | null;
}

export interface SeriesKey {
  res: Resolution;
  tenant: string;
  modelId: string;
  version: number;
  group: string;
  bucket: number;
}

export interface RollupRecord extends SeriesKey {
  rollup: Rollup;
}

export interface OtaRecord {
  deviceId: string;
  modelId: string;
  toVersion: number;
  tenant: string;
  group: string;
  releaseId: string | null;
  fromVersion: number | null;
  state: string;
  viaDelta: boolean;
  bytesDownloaded: number;
  bytesTotal: number | null;
  startedAt: number;
  finishedAt: number | null;
  updatedAt: number;
}

export interface ReleaseRecord {
  releaseId: string;
  tenant: string;
  modelId: string;
  version: number;
  state: string;
  stage: string;
  percentage: number;
  groups: string[];
  stageStartedAt: number;
  updatedAt: number;
}

export interface RoundRecord {
  roundId: string;
  tenant: string;
  modelId: string;
  baseVersion: number;
  participants: number;
  epsilonSpent: number;
  deltaSpent: number;
  metrics: Record<string, number>;
  finishedAt: number;
}

export type SloSli = 'AVAILABILITY' | 'LATENCY_P99' | 'FRESHNESS' | 'OTA_SUCCESS';

export interface SloRecord {
  tenant: string;
  /** Null for a tenant-wide objective (FRESHNESS). */
  modelId: string | null;
  sli: SloSli;
  /** Fraction of good events the objective promises, e.g. 0.999. */
  target: number;
  /** For LATENCY_P99: a request is good when it answered within this many ms. */
  thresholdMs: number | null;
  /** The SLO window (the burn-rate windows scale with it). */
  windowMs: number;
  updatedAt: number;
}

export interface AlertRecord {
  id: string;
  kind: 'drift' | 'slo';
  tenant: string;
  modelId: string;
  version: number | null;
  name: string;
  severity: string;
  state: string;
  detail: Record<string, unknown>;
  at: number;
}

export interface RollupQuery {
  res: Resolution;
  tenant: string;
  modelId?: string | undefined;
  versions?: readonly number[] | undefined;
  groups?: readonly string[] | undefined;
  from: number;
  to: number;
}

export interface RetentionPolicy {
  minuteRollupsMs: number;
  hourRollupsMs: number;
  inboxMs: number;
}

const CHUNK = 200;
function* chunks<T>(items: readonly T[], size = CHUNK): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/**
 * The telemetry's one repository layer over Kysely: the same code and migrations for SQLite and PostgreSQL. Writes
 * come in batches (an intake batch is one transaction: its inbox marks and all its effects).
 */
export class TelemetryStore {
  constructor(
    readonly db: Db,
    readonly kind: DatabaseKind,
  ) {}

  /** Runs fn with a store bound to one transaction (nested calls join it). */
  async transaction<T>(fn: (tx: TelemetryStore) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this);
    return this.db
      .transaction()
      .execute((trx: Transaction<TelemetryDatabase>) => fn(new TelemetryStore(trx, this.kind)));
  }

  /**
   * The transactional inbox for a batch: records each id as processed by `group` and returns the ids that were
   * new (the others were processed before: skip their effects). Call inside the transaction of the effects.
   */
  async claimEvents(group: string, eventIds: readonly string[], now: number): Promise<Set<string>> {
    const fresh = new Set<string>();
    for (const part of chunks([...new Set(eventIds)], 500)) {
      const rows = await this.db
        .insertInto('inbox')
        .values(part.map((id) => ({ grp: group, event_id: id, processed_at: now })))
        .onConflict((oc) => oc.columns(['grp', 'event_id']).doNothing())
        .returning('event_id')
        .execute();
      for (const r of rows) fresh.add(r.event_id);
    }
    return fresh;
  }

  // devices

  async getDevices(ids: readonly string[]): Promise<Map<string, DeviceRecord>> {
    const out = new Map<string, DeviceRecord>();
    for (const part of chunks([...new Set(ids)], 500)) {
      const rows = await this.db.selectFrom('devices').selectAll().where('device_id', 'in', part).execute();
      for (const r of rows) out.set(r.device_id, deviceOf(r));
    }
    return out;
  }

  async putDevices(devices: readonly DeviceRecord[]): Promise<void> {
    for (const part of chunks(devices)) {
      await this.db
        .insertInto('devices')
        .values(part.map(deviceRow))
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet((eb) => ({
            tenant: eb.ref('excluded.tenant'),
            registered_at: eb.ref('excluded.registered_at'),
            revoked_at: eb.ref('excluded.revoked_at'),
            grp: eb.ref('excluded.grp'),
            model_id: eb.ref('excluded.model_id'),
            version: eb.ref('excluded.version'),
            last_seen_at: eb.ref('excluded.last_seen_at'),
            presence: eb.ref('excluded.presence'),
            presence_at: eb.ref('excluded.presence_at'),
          })),
        )
        .execute();
    }
  }

  async listDevices(filter: {
    tenant: string;
    modelId?: string | undefined;
    group?: string | undefined;
    version?: number | undefined;
    limit?: number | undefined;
  }): Promise<DeviceRecord[]> {
    let q = this.db.selectFrom('devices').selectAll().where('tenant', '=', filter.tenant);
    if (filter.modelId !== undefined) q = q.where('model_id', '=', filter.modelId);
    if (filter.group !== undefined) q = q.where('grp', '=', filter.group);
    if (filter.version !== undefined) q = q.where('version', '=', filter.version);
    const rows = await q
      .orderBy('device_id')
      .limit(filter.limit ?? 1000)
      .execute();
    return rows.map(deviceOf);
  }

  /** Registered, unrevoked devices per tenant and group: fresh (heard from since `freshSince`) or silent. */
  async deviceFreshness(
    freshSince: number,
  ): Promise<Array<{ tenant: string; group: string; fresh: number; silent: number }>> {
    const rows = await this.db
      .selectFrom('devices')
      .select((eb) => [
        'tenant',
        'grp',
        eb.fn.countAll<number>().as('total'),
        eb.fn
          .sum<number>(
            eb
              .case()
              .when(
                eb.and([
                  eb('last_seen_at', '>=', freshSince),
                  eb.or([eb('presence', 'is', null), eb('presence', '<>', 'OFFLINE')]),
                ]),
              )
              .then(1)
              .else(0)
              .end(),
          )
          .as('fresh'),
      ])
      .where('registered_at', 'is not', null)
      .where('revoked_at', 'is', null)
      .groupBy(['tenant', 'grp'])
      .execute();
    return rows.map((r) => ({
      tenant: r.tenant,
      group: r.grp,
      fresh: Number(r.fresh ?? 0),
      silent: Number(r.total) - Number(r.fresh ?? 0),
    }));
  }

  /** How many devices run each version of a tenant's models (the version mix). */
  async versionMix(
    tenant: string,
    modelId?: string,
  ): Promise<Array<{ modelId: string; version: number; group: string; devices: number }>> {
    let q = this.db
      .selectFrom('devices')
      .select((eb) => ['model_id', 'version', 'grp', eb.fn.countAll<number>().as('n')])
      .where('tenant', '=', tenant)
      .where('model_id', 'is not', null)
      .where('version', 'is not', null)
      .where('revoked_at', 'is', null);
    if (modelId !== undefined) q = q.where('model_id', '=', modelId);
    const rows = await q
      .groupBy(['model_id', 'version', 'grp'])
      .orderBy('model_id')
      .orderBy('version')
      .execute();
    return rows.map((r) => ({
      modelId: r.model_id!,
      version: r.version!,
      group: r.grp,
      devices: Number(r.n),
    }));
  }

  /** Devices of a cohort heard from since `since`. */
  async countReporting(filter: {
    tenant: string;
    modelId: string;
    version: number;
    groups: readonly string[];
    since: number;
  }): Promise<number> {
    let q = this.db
      .selectFrom('devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('tenant', '=', filter.tenant)
      .where('model_id', '=', filter.modelId)
      .where('version', '=', filter.version)
      .where('last_seen_at', '>=', filter.since);
    if (filter.groups.length > 0) q = q.where('grp', 'in', filter.groups);
    const row = await q.executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  // versions

  async knownVersions(keys: ReadonlyArray<{ modelId: string; version: number }>): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of chunks(keys)) {
      if (part.length === 0) continue;
      const rows = await this.db
        .selectFrom('versions')
        .select(['model_id', 'version'])
        .where((eb) =>
          eb.or(part.map((k) => eb.and([eb('model_id', '=', k.modelId), eb('version', '=', k.version)]))),
        )
        .execute();
      for (const r of rows) out.add(versionKey(r.model_id, r.version));
    }
    return out;
  }

  async putVersions(
    rows: ReadonlyArray<{ modelId: string; version: number; tenant: string; createdAt: number }>,
  ) {
    for (const part of chunks(rows)) {
      await this.db
        .insertInto('versions')
        .values(
          part.map((r) => ({
            model_id: r.modelId,
            version: r.version,
            tenant: r.tenant,
            created_at: r.createdAt,
          })),
        )
        .onConflict((oc) => oc.columns(['model_id', 'version']).doNothing())
        .execute();
    }
  }

  // rollups

  async getRollups(keys: readonly SeriesKey[]): Promise<Map<string, Rollup>> {
    const out = new Map<string, Rollup>();
    for (const part of chunks(keys, 100)) {
      if (part.length === 0) continue;
      const rows = await this.db
        .selectFrom('rollups')
        .selectAll()
        .where((eb) =>
          eb.or(
            part.map((k) =>
              eb.and([
                eb('res', '=', k.res),
                eb('tenant', '=', k.tenant),
                eb('model_id', '=', k.modelId),
                eb('version', '=', k.version),
                eb('grp', '=', k.group),
                eb('bucket', '=', k.bucket),
              ]),
            ),
          ),
        )
        .execute();
      for (const r of rows) out.set(seriesKeyString(seriesKeyOf(r)), decodeRollup(r));
    }
    return out;
  }

  async putRollups(records: readonly RollupRecord[]): Promise<void> {
    for (const part of chunks(records, 100)) {
      await this.db
        .insertInto('rollups')
        .values(
          part.map((r) => ({
            res: r.res,
            tenant: r.tenant,
            model_id: r.modelId,
            version: r.version,
            grp: r.group,
            bucket: r.bucket,
            ...encodeRollup(r.rollup),
          })),
        )
        .onConflict((oc) =>
          oc.columns(['res', 'tenant', 'model_id', 'version', 'grp', 'bucket']).doUpdateSet((eb) => ({
            inferences: eb.ref('excluded.inferences'),
            errors: eb.ref('excluded.errors'),
            escalations: eb.ref('excluded.escalations'),
            fallbacks: eb.ref('excluded.fallbacks'),
            labeled: eb.ref('excluded.labeled'),
            correct: eb.ref('excluded.correct'),
            confidence_sum: eb.ref('excluded.confidence_sum'),
            confidence_bins: eb.ref('excluded.confidence_bins'),
            prediction_bins: eb.ref('excluded.prediction_bins'),
            latency: eb.ref('excluded.latency'),
            heartbeats: eb.ref('excluded.heartbeats'),
            features: eb.ref('excluded.features'),
          })),
        )
        .execute();
    }
  }

  /** Rollup rows of a tenant (optionally one model, some versions and groups) with buckets in [from, to). */
  async queryRollups(q: RollupQuery): Promise<RollupRecord[]> {
    let query = this.db
      .selectFrom('rollups')
      .selectAll()
      .where('res', '=', q.res)
      .where('tenant', '=', q.tenant)
      .where('bucket', '>=', q.from)
      .where('bucket', '<', q.to);
    if (q.modelId !== undefined) query = query.where('model_id', '=', q.modelId);
    if (q.versions !== undefined) {
      if (q.versions.length === 0) return [];
      query = query.where('version', 'in', q.versions);
    }
    if (q.groups !== undefined && q.groups.length > 0) query = query.where('grp', 'in', q.groups);
    const rows = await query.execute();
    return rows.map((r) => ({ ...seriesKeyOf(r), rollup: decodeRollup(r) }));
  }

  /** Distinct (model, version) pairs with rollups in [from, to) at a resolution. */
  async activeSeries(
    res: Resolution,
    from: number,
    to: number,
  ): Promise<Array<{ tenant: string; modelId: string; version: number }>> {
    const rows = await this.db
      .selectFrom('rollups')
      .select(['tenant', 'model_id', 'version'])
      .distinct()
      .where('res', '=', res)
      .where('bucket', '>=', from)
      .where('bucket', '<', to)
      .execute();
    return rows.map((r) => ({ tenant: r.tenant, modelId: r.model_id, version: r.version }));
  }

  /** The first bucket a version has a rollup in (its baseline window starts there). */
  async firstBucket(
    res: Resolution,
    tenant: string,
    modelId: string,
    version: number,
  ): Promise<number | null> {
    const row = await this.db
      .selectFrom('rollups')
      .select((eb) => eb.fn.min<number>('bucket').as('first'))
      .where('res', '=', res)
      .where('tenant', '=', tenant)
      .where('model_id', '=', modelId)
      .where('version', '=', version)
      .executeTakeFirst();
    return row?.first == null ? null : Number(row.first);
  }

  // OTA

  async getOta(
    keys: ReadonlyArray<{ deviceId: string; modelId: string; toVersion: number }>,
  ): Promise<Map<string, OtaRecord>> {
    const out = new Map<string, OtaRecord>();
    for (const part of chunks(keys, 100)) {
      if (part.length === 0) continue;
      const rows = await this.db
        .selectFrom('ota')
        .selectAll()
        .where((eb) =>
          eb.or(
            part.map((k) =>
              eb.and([
                eb('device_id', '=', k.deviceId),
                eb('model_id', '=', k.modelId),
                eb('to_version', '=', k.toVersion),
              ]),
            ),
          ),
        )
        .execute();
      for (const r of rows) out.set(otaKey(r.device_id, r.model_id, r.to_version), otaOf(r));
    }
    return out;
  }

  async putOta(records: readonly OtaRecord[]): Promise<void> {
    for (const part of chunks(records)) {
      await this.db
        .insertInto('ota')
        .values(part.map(otaRow))
        .onConflict((oc) =>
          oc.columns(['device_id', 'model_id', 'to_version']).doUpdateSet((eb) => ({
            tenant: eb.ref('excluded.tenant'),
            grp: eb.ref('excluded.grp'),
            release_id: eb.ref('excluded.release_id'),
            from_version: eb.ref('excluded.from_version'),
            state: eb.ref('excluded.state'),
            via_delta: eb.ref('excluded.via_delta'),
            bytes_downloaded: eb.ref('excluded.bytes_downloaded'),
            bytes_total: eb.ref('excluded.bytes_total'),
            started_at: eb.ref('excluded.started_at'),
            finished_at: eb.ref('excluded.finished_at'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
  }

  /** OTAs of a tenant updated in [from, to) (optionally of one model, release, version, device or groups). */
  async queryOta(q: {
    tenant: string;
    modelId?: string | undefined;
    releaseId?: string | undefined;
    toVersion?: number | undefined;
    deviceId?: string | undefined;
    groups?: readonly string[] | undefined;
    from: number;
    to: number;
  }): Promise<OtaRecord[]> {
    let query = this.db
      .selectFrom('ota')
      .selectAll()
      .where('tenant', '=', q.tenant)
      .where('updated_at', '>=', q.from)
      .where('updated_at', '<', q.to);
    if (q.modelId !== undefined) query = query.where('model_id', '=', q.modelId);
    if (q.releaseId !== undefined) query = query.where('release_id', '=', q.releaseId);
    if (q.toVersion !== undefined) query = query.where('to_version', '=', q.toVersion);
    if (q.deviceId !== undefined) query = query.where('device_id', '=', q.deviceId);
    if (q.groups !== undefined && q.groups.length > 0) query = query.where('grp', 'in', q.groups);
    return (await query.orderBy('updated_at', 'desc').limit(10_000).execute()).map(otaOf);
  }

  // releases

  async getRelease(id: string): Promise<ReleaseRecord | null> {
    const r = await this.db
      .selectFrom('releases')
      .selectAll()
      .where('release_id', '=', id)
      .executeTakeFirst();
    return r ? releaseOf(r) : null;
  }

  async putRelease(r: ReleaseRecord): Promise<void> {
    await this.db
      .insertInto('releases')
      .values({
        release_id: r.releaseId,
        tenant: r.tenant,
        model_id: r.modelId,
        version: r.version,
        state: r.state,
        stage: r.stage,
        percentage: r.percentage,
        groups: JSON.stringify(r.groups),
        stage_started_at: r.stageStartedAt,
        updated_at: r.updatedAt,
      })
      .onConflict((oc) =>
        oc.column('release_id').doUpdateSet((eb) => ({
          version: eb.ref('excluded.version'),
          state: eb.ref('excluded.state'),
          stage: eb.ref('excluded.stage'),
          percentage: eb.ref('excluded.percentage'),
          groups: eb.ref('excluded.groups'),
          stage_started_at: eb.ref('excluded.stage_started_at'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }

  async listReleases(
    filter: { tenant?: string | undefined; states?: readonly string[] | undefined } = {},
  ): Promise<ReleaseRecord[]> {
    let q = this.db.selectFrom('releases').selectAll();
    if (filter.tenant !== undefined) q = q.where('tenant', '=', filter.tenant);
    if (filter.states !== undefined) q = q.where('state', 'in', filter.states);
    return (await q.orderBy('updated_at', 'desc').limit(1000).execute()).map(releaseOf);
  }

  // rounds

  async putRound(r: RoundRecord): Promise<void> {
    await this.db
      .insertInto('rounds')
      .values({
        round_id: r.roundId,
        tenant: r.tenant,
        model_id: r.modelId,
        base_version: r.baseVersion,
        participants: r.participants,
        epsilon_spent: r.epsilonSpent,
        delta_spent: r.deltaSpent,
        metrics: JSON.stringify(r.metrics),
        finished_at: r.finishedAt,
      })
      .onConflict((oc) => oc.column('round_id').doNothing())
      .execute();
  }

  async getRound(id: string): Promise<RoundRecord | null> {
    const r = await this.db.selectFrom('rounds').selectAll().where('round_id', '=', id).executeTakeFirst();
    return r ? roundOf(r) : null;
  }

  async listRounds(filter: { tenant: string; modelId?: string | undefined }): Promise<RoundRecord[]> {
    let q = this.db.selectFrom('rounds').selectAll().where('tenant', '=', filter.tenant);
    if (filter.modelId !== undefined) q = q.where('model_id', '=', filter.modelId);
    return (await q.orderBy('finished_at', 'desc').limit(1000).execute()).map(roundOf);
  }

  /** ε and δ spent per tenant and model: the sum over its rounds (each round result reports what it spent). */
  async privacySpent(): Promise<
    Array<{ tenant: string; modelId: string; epsilon: number; delta: number; rounds: number }>
  > {
    const rows = await this.db
      .selectFrom('rounds')
      .select((eb) => [
        'tenant',
        'model_id',
        eb.fn.sum<number>('epsilon_spent').as('epsilon'),
        eb.fn.sum<number>('delta_spent').as('delta'),
        eb.fn.countAll<number>().as('n'),
      ])
      .groupBy(['tenant', 'model_id'])
      .execute();
    return rows.map((r) => ({
      tenant: r.tenant,
      modelId: r.model_id,
      epsilon: Number(r.epsilon),
      delta: Number(r.delta),
      rounds: Number(r.n),
    }));
  }

  // SLOs

  async putSlo(s: SloRecord): Promise<void> {
    await this.db
      .insertInto('slos')
      .values({
        tenant: s.tenant,
        model_id: s.modelId ?? '',
        kind: s.sli,
        target: s.target,
        threshold_ms: s.thresholdMs,
        window_ms: s.windowMs,
        updated_at: s.updatedAt,
      })
      .onConflict((oc) =>
        oc.columns(['tenant', 'model_id', 'kind']).doUpdateSet((eb) => ({
          target: eb.ref('excluded.target'),
          threshold_ms: eb.ref('excluded.threshold_ms'),
          window_ms: eb.ref('excluded.window_ms'),
          updated_at: eb.ref('excluded.updated_at'),
        })),
      )
      .execute();
  }

  async deleteSlo(tenant: string, modelId: string | null, sli: SloSli): Promise<boolean> {
    const r = await this.db
      .deleteFrom('slos')
      .where('tenant', '=', tenant)
      .where('model_id', '=', modelId ?? '')
      .where('kind', '=', sli)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listSlos(
    filter: { tenant?: string | undefined; modelId?: string | undefined } = {},
  ): Promise<SloRecord[]> {
    let q = this.db.selectFrom('slos').selectAll();
    if (filter.tenant !== undefined) q = q.where('tenant', '=', filter.tenant);
    if (filter.modelId !== undefined) q = q.where('model_id', '=', filter.modelId);
    const rows = await q.orderBy('tenant').orderBy('model_id').orderBy('kind').execute();
    return rows.map((r) => ({
      tenant: r.tenant,
      modelId: r.model_id === '' ? null : r.model_id,
      sli: r.kind as SloSli,
      target: Number(r.target),
      thresholdMs: r.threshold_ms === null ? null : Number(r.threshold_ms),
      windowMs: Number(r.window_ms),
      updatedAt: Number(r.updated_at),
    }));
  }

  // alerts

  /** Stores an alert; false when one with its id exists (an alert is raised once per id). */
  async putAlert(a: AlertRecord): Promise<boolean> {
    const r = await this.db
      .insertInto('alerts')
      .values({
        id: a.id,
        kind: a.kind,
        tenant: a.tenant,
        model_id: a.modelId,
        version: a.version,
        name: a.name,
        severity: a.severity,
        state: a.state,
        detail: JSON.stringify(a.detail),
        at: a.at,
      })
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
  }

  async listAlerts(filter: {
    tenant: string;
    modelId?: string | undefined;
    kind?: 'drift' | 'slo' | undefined;
    since?: number | undefined;
    limit?: number | undefined;
  }): Promise<AlertRecord[]> {
    let q = this.db.selectFrom('alerts').selectAll().where('tenant', '=', filter.tenant);
    if (filter.modelId !== undefined) q = q.where('model_id', '=', filter.modelId);
    if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
    if (filter.since !== undefined) q = q.where('at', '>=', filter.since);
    const rows = await q
      .orderBy('at', 'desc')
      .limit(filter.limit ?? 100)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind as 'drift' | 'slo',
      tenant: r.tenant,
      modelId: r.model_id,
      version: r.version,
      name: r.name,
      severity: r.severity,
      state: r.state,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
      at: Number(r.at),
    }));
  }

  // retention

  /** Drops minute rollups, hour rollups, inbox marks, finished OTAs and alerts past their retention. */
  async prune(
    now: number,
    policy: RetentionPolicy,
  ): Promise<{ rollups: number; inbox: number; ota: number; alerts: number }> {
    const m = await this.db
      .deleteFrom('rollups')
      .where('res', '=', 'm')
      .where('bucket', '<', now - policy.minuteRollupsMs)
      .executeTakeFirst();
    const h = await this.db
      .deleteFrom('rollups')
      .where('res', '=', 'h')
      .where('bucket', '<', now - policy.hourRollupsMs)
      .executeTakeFirst();
    const inbox = await this.db
      .deleteFrom('inbox')
      .where('processed_at', '<', now - policy.inboxMs)
      .executeTakeFirst();
    const ota = await this.db
      .deleteFrom('ota')
      .where('updated_at', '<', now - policy.hourRollupsMs)
      .executeTakeFirst();
    const alerts = await this.db
      .deleteFrom('alerts')
      .where('at', '<', now - policy.hourRollupsMs)
      .executeTakeFirst();
    return {
      rollups: Number(m.numDeletedRows) + Number(h.numDeletedRows),
      inbox: Number(inbox.numDeletedRows),
      ota: Number(ota.numDeletedRows),
      alerts: Number(alerts.numDeletedRows),
    };
  }
}

export const versionKey = (modelId: string, version: number) => `${modelId}\n${version}`;
export const otaKey = (deviceId: string, modelId: string, toVersion: number) =>
  `${deviceId}\n${modelId}\n${toVersion}`;
export const seriesKeyString = (k: SeriesKey) =>
  `${k.res}\n${k.tenant}\n${k.modelId}\n${k.version}\n${k.group}\n${k.bucket}`;

function seriesKeyOf(r: {
  res: string;
  tenant: string;
  model_id: string;
  version: number;
  grp: string;
  bucket: number;
}): SeriesKey {
  return {
    res: r.res as Resolution,
    tenant: r.tenant,
    modelId: r.model_id,
    version: Number(r.version),
    group: r.grp,
    bucket: Number(r.bucket),
  };
}

function deviceOf(r: TelemetryDatabase['devices']): DeviceRecord {
  return {
    deviceId: r.device_id,
    tenant: r.tenant,
    registeredAt: r.registered_at === null ? null : Number(r.registered_at),
    revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
    group: r.grp,
    modelId: r.model_id,
    version: r.version === null ? null : Number(r.version),
    lastSeenAt: r.last_seen_at === null ? null : Number(r.last_seen_at),
    presence: r.presence as DeviceRecord['presence'],
    presenceAt: r.presence_at === null ? null : Number(r.presence_at),
  };
}

function deviceRow(d: DeviceRecord): TelemetryDatabase['devices'] {
  return {
    device_id: d.deviceId,
    tenant: d.tenant,
    registered_at: d.registeredAt,
    revoked_at: d.revokedAt,
    grp: d.group,
    model_id: d.modelId,
    version: d.version,
    last_seen_at: d.lastSeenAt,
    presence: d.presence,
    presence_at: d.presenceAt,
  };
}

function otaOf(r: TelemetryDatabase['ota']): OtaRecord {
  return {
    deviceId: r.device_id,
    modelId: r.model_id,
    toVersion: Number(r.to_version),
    tenant: r.tenant,
    group: r.grp,
    releaseId: r.release_id,
    fromVersion: r.from_version === null ? null : Number(r.from_version),
    state: r.state,
    viaDelta: Number(r.via_delta) === 1,
    bytesDownloaded: Number(r.bytes_downloaded),
    bytesTotal: r.bytes_total === null ? null : Number(r.bytes_total),
    startedAt: Number(r.started_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    updatedAt: Number(r.updated_at),
  };
}

function otaRow(o: OtaRecord): TelemetryDatabase['ota'] {
  return {
    device_id: o.deviceId,
    model_id: o.modelId,
    to_version: o.toVersion,
    tenant: o.tenant,
    grp: o.group,
    release_id: o.releaseId,
    from_version: o.fromVersion,
    state: o.state,
    via_delta: o.viaDelta ? 1 : 0,
    bytes_downloaded: o.bytesDownloaded,
    bytes_total: o.bytesTotal,
    started_at: o.startedAt,
    finished_at: o.finishedAt,
    updated_at: o.updatedAt,
  };
}

function releaseOf(r: TelemetryDatabase['releases']): ReleaseRecord {
  return {
    releaseId: r.release_id,
    tenant: r.tenant,
    modelId: r.model_id,
    version: Number(r.version),
    state: r.state,
    stage: r.stage,
    percentage: Number(r.percentage),
    groups: JSON.parse(r.groups) as string[],
    stageStartedAt: Number(r.stage_started_at),
    updatedAt: Number(r.updated_at),
  };
}

function roundOf(r: TelemetryDatabase['rounds']): RoundRecord {
  return {
    roundId: r.round_id,
    tenant: r.tenant,
    modelId: r.model_id,
    baseVersion: Number(r.base_version),
    participants: Number(r.participants),
    epsilonSpent: Number(r.epsilon_spent),
    deltaSpent: Number(r.delta_spent),
    metrics: JSON.parse(r.metrics) as Record<string, number>,
    finishedAt: Number(r.finished_at),
  };
}
