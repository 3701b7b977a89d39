import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import type { DatabaseKind } from '@edgefl/service-kit';

/** The telemetry's migrations, one list for both engines (Kysely's schema builder writes each engine's DDL). */
export function telemetryMigrations(_kind: DatabaseKind): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('inbox')
          .addColumn('grp', 'text', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('processed_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('inbox_pk', ['grp', 'event_id'])
          .execute();
        await db.schema.createIndex('inbox_age').on('inbox').columns(['processed_at']).execute();
        await db.schema
          .createTable('devices')
          .addColumn('device_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('registered_at', 'bigint')
          .addColumn('revoked_at', 'bigint')
          .addColumn('grp', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text')
          .addColumn('version', 'integer')
          .addColumn('last_seen_at', 'bigint')
          .addColumn('presence', 'text')
          .addColumn('presence_at', 'bigint')
          .execute();
        await db.schema.createIndex('devices_tenant').on('devices').columns(['tenant', 'model_id']).execute();
        await db.schema
          .createTable('versions')
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('versions_pk', ['model_id', 'version'])
          .execute();
        await db.schema
          .createTable('rollups')
          .addColumn('res', 'text', (c) => c.notNull())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('grp', 'text', (c) => c.notNull())
          .addColumn('bucket', 'bigint', (c) => c.notNull())
          .addColumn('inferences', 'bigint', (c) => c.notNull())
          .addColumn('errors', 'bigint', (c) => c.notNull())
          .addColumn('escalations', 'bigint', (c) => c.notNull())
          .addColumn('fallbacks', 'bigint', (c) => c.notNull())
          .addColumn('labeled', 'bigint', (c) => c.notNull())
          .addColumn('correct', 'bigint', (c) => c.notNull())
          .addColumn('confidence_sum', 'double precision', (c) => c.notNull())
          .addColumn('confidence_bins', 'text', (c) => c.notNull())
          .addColumn('prediction_bins', 'text', (c) => c.notNull())
          .addColumn('latency', 'text', (c) => c.notNull())
          .addColumn('heartbeats', 'bigint', (c) => c.notNull())
          .addColumn('features', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('rollups_pk', ['res', 'tenant', 'model_id', 'version', 'grp', 'bucket'])
          .execute();
        await db.schema.createIndex('rollups_age').on('rollups').columns(['res', 'bucket']).execute();
        await db.schema
          .createTable('ota')
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('to_version', 'integer', (c) => c.notNull())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('grp', 'text', (c) => c.notNull())
          .addColumn('release_id', 'text')
          .addColumn('from_version', 'integer')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('via_delta', 'integer', (c) => c.notNull())
          .addColumn('bytes_downloaded', 'bigint', (c) => c.notNull())
          .addColumn('bytes_total', 'bigint')
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('ota_pk', ['device_id', 'model_id', 'to_version'])
          .execute();
        await db.schema
          .createIndex('ota_model')
          .on('ota')
          .columns(['tenant', 'model_id', 'updated_at'])
          .execute();
        await db.schema
          .createTable('releases')
          .addColumn('release_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('stage', 'text', (c) => c.notNull())
          .addColumn('percentage', 'double precision', (c) => c.notNull())
          .addColumn('groups', 'text', (c) => c.notNull())
          .addColumn('stage_started_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('rounds')
          .addColumn('round_id', 'text', (c) => c.primaryKey())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('base_version', 'integer', (c) => c.notNull())
          .addColumn('participants', 'integer', (c) => c.notNull())
          .addColumn('epsilon_spent', 'double precision', (c) => c.notNull())
          .addColumn('delta_spent', 'double precision', (c) => c.notNull())
          .addColumn('metrics', 'text', (c) => c.notNull())
          .addColumn('finished_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('slos')
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('target', 'double precision', (c) => c.notNull())
          .addColumn('threshold_ms', 'double precision')
          .addColumn('window_ms', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('slos_pk', ['tenant', 'model_id', 'kind'])
          .execute();
        await db.schema
          .createTable('alerts')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('tenant', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('version', 'integer')
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('severity', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('alerts_model')
          .on('alerts')
          .columns(['tenant', 'model_id', 'at'])
          .execute();
      },
    },
  };
}
