// Rows ↔ records: how each table's row reads as the record the service sees (parsed JSON, camelCase).
import type { Selectable } from 'kysely';
import { isUniqueViolation, StoreConflictError } from '@edgefl/service-kit';
import type {
  BaselineSlis,
  Delta,
  Device,
  DeviceRollout,
  GateSpec,
  HealthReport,
  Model,
  ModelVersion,
  OutboxEvent,
  Release,
  RollForward,
  StageSpec,
  Targeting,
  Tenant,
} from './records.js';
import type {
  DeltaTable,
  DeviceRolloutTable,
  DeviceTable,
  HealthReportTable,
  ModelTable,
  OutboxTable,
  ReleaseTable,
  TenantTable,
  VersionTable,
} from './schema.js';

export const json = <T>(text: string | null, fallback: T): T =>
  text === null ? fallback : (JSON.parse(text) as T);

export const toTenant = (r: Selectable<TenantTable>): Tenant => ({
  id: r.id,
  name: r.name,
  baseline:
    r.baseline_model_id !== null && r.baseline_version !== null
      ? { modelId: r.baseline_model_id, version: r.baseline_version }
      : null,
  createdAt: r.created_at,
});

export const toModel = (r: Selectable<ModelTable>): Model => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  spec: json<unknown>(r.spec, null),
  deltaWindow: r.delta_window,
  stableVersion: r.stable_version,
  createdAt: r.created_at,
});

export const toVersion = (r: Selectable<VersionTable>): ModelVersion => ({
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

export const toDelta = (r: Selectable<DeltaTable>): Delta => ({
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

export const toDevice = (r: Selectable<DeviceTable>): Device => ({
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
  revokedAt: r.revoked_at === null ? null : Number(r.revoked_at),
  revokeReason: r.revoke_reason,
  tokensNotBefore: r.tokens_not_before === null ? null : Number(r.tokens_not_before),
});

export const toRelease = (r: Selectable<ReleaseTable>): Release => ({
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

export const toDeviceRollout = (r: Selectable<DeviceRolloutTable>): DeviceRollout => ({
  releaseId: r.release_id,
  deviceId: r.device_id,
  stageIndex: r.stage_index,
  state: r.state,
  startedAt: r.started_at,
  deadlineAt: r.deadline_at,
  updatedAt: r.updated_at,
});

export const toHealth = (r: Selectable<HealthReportTable>): HealthReport => ({
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
  baselineVersion: r.baseline_version,
  baselineDevicesReporting: r.baseline_devices_reporting,
  baselineInferenceErrorRate: r.baseline_inference_error_rate,
  baselineP95LatencyMs: r.baseline_p95_latency_ms,
  baselineAccuracy: r.baseline_accuracy,
  baselineMeanConfidence: r.baseline_mean_confidence,
  receivedAt: r.received_at,
});

export const toOutboxEvent = (r: Selectable<OutboxTable>): OutboxEvent => ({
  id: Number(r.id),
  topic: r.topic,
  key: r.record_key,
  tenantId: r.tenant_id,
  eventId: r.event_id,
  payload: r.payload,
  createdAt: r.created_at,
});

/** Runs an insert; a uniqueness violation becomes a StoreConflictError with `what` as its message. */
export async function insertOrConflict(what: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (error) {
    if (isUniqueViolation(error)) throw new StoreConflictError(what);
    throw error;
  }
}
