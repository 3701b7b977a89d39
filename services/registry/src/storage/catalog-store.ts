import type { Kysely } from 'kysely';
import { type Delta, type Model, type ModelVersion, type Tenant, type VersionStatus } from './records.js';
import { insertOrConflict, toDelta, toModel, toTenant, toVersion } from './rows.js';
import type { RegistryDatabase } from './schema.js';

/** Tenants, models, versions and deltas: what the registry serves. */
export class CatalogStore {
  constructor(private readonly db: Kysely<RegistryDatabase>) {}

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

  /** Every blob key a committed version or delta references (what the garbage sweep keeps). */
  async referencedBlobKeys(): Promise<Set<string>> {
    const [versions, deltas] = await Promise.all([
      this.db.selectFrom('versions').select('blob_key').execute(),
      this.db.selectFrom('deltas').select('blob_key').execute(),
    ]);
    return new Set([...versions, ...deltas].map((r) => r.blob_key));
  }
}
