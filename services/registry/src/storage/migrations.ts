import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import type { DatabaseKind } from '@edgefl/service-kit';

/**
 * The registry's migrations, one list for both engines (Kysely's schema builder writes each engine's DDL). The
 * only engine-specific detail is the outbox's auto-increment key.
 */
export function registryMigrations(kind: DatabaseKind): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('tenants')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('baseline_model_id', 'text')
          .addColumn('baseline_version', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('models')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('spec', 'text')
          .addColumn('delta_window', 'integer', (c) => c.notNull())
          .addColumn('stable_version', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('versions')
          .addColumn('model_id', 'text', (c) => c.notNull().references('models.id'))
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('label', 'text', (c) => c.notNull())
          .addColumn('parent_version', 'integer')
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('round_id', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('blob_key', 'text', (c) => c.notNull())
          .addColumn('wrapped_key', 'text', (c) => c.notNull())
          .addColumn('signing_key_id', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .addColumn('metrics', 'text', (c) => c.notNull())
          .addColumn('provenance', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('versions_pk', ['model_id', 'version'])
          .execute();
        await db.schema
          .createIndex('versions_round')
          .on('versions')
          .columns(['model_id', 'round_id'])
          .unique()
          .where(sql.ref('round_id'), 'is not', null)
          .execute();
        await db.schema
          .createTable('deltas')
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('from_version', 'integer', (c) => c.notNull())
          .addColumn('to_version', 'integer', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('blob_key', 'text', (c) => c.notNull())
          .addColumn('wrapped_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('deltas_pk', ['model_id', 'from_version', 'to_version'])
          .execute();
        await db.schema
          .createTable('devices')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text')
          .addColumn('group_name', 'text')
          .addColumn('hardware_class', 'text')
          .addColumn('ram_bytes', 'bigint')
          .addColumn('firmware', 'text')
          .addColumn('attributes', 'text', (c) => c.notNull())
          .addColumn('current_version', 'integer')
          .addColumn('last_seen_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('releases')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('model_id', 'text', (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('previous_version', 'integer')
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('stage_index', 'integer', (c) => c.notNull())
          .addColumn('stages', 'text', (c) => c.notNull())
          .addColumn('gates', 'text', (c) => c.notNull())
          .addColumn('targeting', 'text', (c) => c.notNull())
          .addColumn('baseline', 'text')
          .addColumn('stage_started_at', 'bigint', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('revision', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        // At most one live (not finished) release per model: a second concurrent create gets a conflict.
        await db.schema
          .createIndex('releases_one_live_per_model')
          .on('releases')
          .column('model_id')
          .unique()
          .where(sql.ref('state'), 'in', sql`('PENDING', 'ROLLING_OUT', 'PAUSED', 'HALTED')`)
          .execute();
        await db.schema
          .createTable('release_transitions')
          .addColumn('release_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('from_state', 'text', (c) => c.notNull())
          .addColumn('to_state', 'text', (c) => c.notNull())
          .addColumn('stage_name', 'text', (c) => c.notNull())
          .addColumn('percentage', 'double precision', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('release_transitions_pk', ['release_id', 'seq'])
          .execute();
        await db.schema
          .createTable('device_rollouts')
          .addColumn('release_id', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('stage_index', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('deadline_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('device_rollouts_pk', ['release_id', 'device_id'])
          .execute();
        await db.schema
          .createIndex('device_rollouts_deadline')
          .on('device_rollouts')
          .columns(['state', 'deadline_at'])
          .execute();
        await db.schema
          .createTable('health_reports')
          .addColumn('event_id', 'text', (c) => c.primaryKey())
          .addColumn('release_id', 'text', (c) => c.notNull())
          .addColumn('stage', 'text', (c) => c.notNull())
          .addColumn('window_start', 'bigint', (c) => c.notNull())
          .addColumn('window_end', 'bigint', (c) => c.notNull())
          .addColumn('devices_reporting', 'integer', (c) => c.notNull())
          .addColumn('ota_failure_rate', 'double precision', (c) => c.notNull())
          .addColumn('inference_error_rate', 'double precision', (c) => c.notNull())
          .addColumn('p95_latency_ms', 'double precision', (c) => c.notNull())
          .addColumn('accuracy', 'double precision')
          .addColumn('mean_confidence', 'double precision', (c) => c.notNull())
          .addColumn('drift_score', 'double precision', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('health_reports_release')
          .on('health_reports')
          .columns(['release_id', 'stage'])
          .execute();
        await db.schema
          .createTable('outbox')
          .addColumn('id', kind === 'postgres' ? 'bigserial' : 'integer', (c) =>
            kind === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('topic', 'text', (c) => c.notNull())
          .addColumn('record_key', 'text', (c) => c.notNull())
          .addColumn('tenant_id', 'text', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull().unique())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('published_at', 'bigint')
          .execute();
        await db.schema.createIndex('outbox_pending').on('outbox').columns(['published_at', 'id']).execute();
        await db.schema
          .createTable('used_assertions')
          .addColumn('jti', 'text', (c) => c.primaryKey())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0002_artifact_format_and_chunk_tree': {
      async up(db: Kysely<unknown>) {
        // what the signed manifest states about an artifact: its format and the root of its chunk Merkle tree
        await db.schema
          .alterTable('versions')
          .addColumn('format', 'text', (c) => c.notNull().defaultTo('onnx'))
          .execute();
        await db.schema
          .alterTable('versions')
          .addColumn('chunk_size', 'integer', (c) => c.notNull().defaultTo(65536))
          .execute();
        await db.schema
          .alterTable('versions')
          .addColumn('merkle_root', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema
          .alterTable('deltas')
          .addColumn('mode', 'text', (c) => c.notNull().defaultTo('lossless'))
          .execute();
      },
    },
    '0003_release_roll_forward': {
      async up(db: Kysely<unknown>) {
        // a rollback rolls forward to a new version carrying the restored artifact (TUF: versions only grow)
        await db.schema.alterTable('releases').addColumn('roll_forward', 'text').execute();
      },
    },
    '0004_consumer_inbox': {
      async up(db: Kysely<unknown>) {
        // the transactional inbox: a consumed event's id, recorded in the transaction of its effects
        await db.schema
          .createTable('inbox')
          .addColumn('grp', 'text', (c) => c.notNull())
          .addColumn('event_id', 'text', (c) => c.notNull())
          .addColumn('processed_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('inbox_pk', ['grp', 'event_id'])
          .execute();
      },
    },
    '0005_device_revocation': {
      async up(db: Kysely<unknown>) {
        // a revoked device gets no token; tokens issued before tokens_not_before (revocation, key rotation) fail
        await db.schema.alterTable('devices').addColumn('revoked_at', 'bigint').execute();
        await db.schema.alterTable('devices').addColumn('revoke_reason', 'text').execute();
        await db.schema.alterTable('devices').addColumn('tokens_not_before', 'bigint').execute();
      },
    },
    '0006_health_baseline': {
      async up(db: Kysely<unknown>) {
        // telemetry's windows carry the baseline cohort's SLIs (same groups, stable version, same window)
        for (const [column, type] of [
          ['baseline_version', 'integer'],
          ['baseline_devices_reporting', 'integer'],
          ['baseline_inference_error_rate', 'double precision'],
          ['baseline_p95_latency_ms', 'double precision'],
          ['baseline_accuracy', 'double precision'],
          ['baseline_mean_confidence', 'double precision'],
        ] as const)
          await db.schema.alterTable('health_reports').addColumn(column, type).execute();
      },
    },
  };
}
