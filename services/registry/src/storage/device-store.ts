import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from '@edgefl/service-kit';
import { type Device } from './records.js';
import { insertOrConflict, toDevice } from './rows.js';
import type { DeviceTable, RegistryDatabase } from './schema.js';

/** Registered devices and the one-time assertion ids of their token requests. */
export class DeviceStore {
  constructor(private readonly db: Kysely<RegistryDatabase>) {}

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
          revoked_at: d.revokedAt,
          revoke_reason: d.revokeReason,
          tokens_not_before: d.tokensNotBefore,
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
        | 'group'
        | 'hardwareClass'
        | 'ramBytes'
        | 'firmware'
        | 'attributes'
        | 'modelId'
        | 'currentVersion'
        | 'lastSeenAt'
        | 'publicKey'
        | 'revokedAt'
        | 'revokeReason'
        | 'tokensNotBefore'
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
    if (patch.attributes !== undefined) set.attributes = JSON.stringify(patch.attributes);
    if (patch.publicKey !== undefined) set.public_key = patch.publicKey;
    if (patch.revokedAt !== undefined) set.revoked_at = patch.revokedAt;
    if (patch.revokeReason !== undefined) set.revoke_reason = patch.revokeReason;
    if (patch.tokensNotBefore !== undefined) set.tokens_not_before = patch.tokensNotBefore;
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
}
