import type { Generated } from 'kysely';

// Table shapes of the registry's metadata store (SQLite or PostgreSQL, one set of migrations). Times are epoch
// milliseconds; JSON documents are stored as text so both engines read and write them the same way.

export interface TenantTable {
  id: string;
  name: string;
  baseline_model_id: string | null;
  baseline_version: number | null;
  created_at: number;
}

export interface ModelTable {
  id: string;
  tenant_id: string;
  name: string;
  /** JSON: the model spec (tensors and their shapes), when known. */
  spec: string | null;
  /** How many older versions get a direct delta to a new version (the compatibility window). */
  delta_window: number;
  /** The version every device not in an active rollout runs (set when a release completes). */
  stable_version: number | null;
  created_at: number;
}

export interface VersionTable {
  model_id: string;
  version: number;
  tenant_id: string;
  label: string;
  parent_version: number | null;
  origin: 'UPLOAD' | 'FEDERATED_ROUND' | 'BASELINE' | 'ROLLBACK';
  round_id: string | null;
  status: 'active' | 'deprecated';
  sha256: string;
  size_bytes: number;
  format: 'onnx' | 'artifact';
  chunk_size: number;
  /** Root (hex) of the artifact's chunk Merkle tree (RFC 6962 hashing, libs/model). */
  merkle_root: string;
  /** Name of the encrypted blob in the artifact store. */
  blob_key: string;
  /** The per-artifact data key, wrapped under the tenant's key-encryption key. */
  wrapped_key: string;
  signing_key_id: string;
  /** Base64 Ed25519 signature over the artifact digest statement. */
  signature: string;
  /** JSON map of metric name → number. */
  metrics: string;
  /** JSON: where the version came from (uploader, round, participants, privacy spent). */
  provenance: string;
  created_at: number;
}

export interface DeltaTable {
  model_id: string;
  from_version: number;
  to_version: number;
  sha256: string;
  size_bytes: number;
  mode: 'lossless' | 'bounded';
  blob_key: string;
  wrapped_key: string;
  created_at: number;
}

export interface DeviceTable {
  id: string;
  tenant_id: string;
  /** Base64 of the raw 32-byte Ed25519 public key. */
  public_key: string;
  model_id: string | null;
  group_name: string | null;
  hardware_class: string | null;
  ram_bytes: number | null;
  firmware: string | null;
  /** JSON: further hardware attributes. */
  attributes: string;
  current_version: number | null;
  last_seen_at: number | null;
  created_at: number;
  /** When the device was revoked (epoch ms); null while it is active. */
  revoked_at: number | null;
  revoke_reason: string | null;
  /** Device tokens issued before this instant (epoch ms) no longer authenticate. */
  tokens_not_before: number | null;
}

export interface ReleaseTable {
  id: string;
  tenant_id: string;
  model_id: string;
  version: number;
  /** The version devices outside the rollout (and after a rollback) run. */
  previous_version: number | null;
  state: 'PENDING' | 'ROLLING_OUT' | 'PAUSED' | 'HALTED' | 'COMPLETED' | 'ROLLED_BACK';
  stage_index: number;
  /** JSON: RolloutStageSpec[] */
  stages: string;
  /** JSON: GateSpec */
  gates: string;
  /** JSON: Targeting */
  targeting: string;
  /** JSON: Baseline SLIs (p95 latency, accuracy, confidence), or null until known. */
  baseline: string | null;
  /** JSON: RollForward, set when a rollback rolled forward to a version restoring the previous artifact. */
  roll_forward: string | null;
  stage_started_at: number;
  reason: string;
  /** Optimistic concurrency: bumped by every state change. */
  revision: number;
  created_at: number;
  updated_at: number;
}

export interface ReleaseTransitionTable {
  release_id: string;
  seq: number;
  from_state: string;
  to_state: string;
  stage_name: string;
  percentage: number;
  reason: string;
  at: number;
}

export interface DeviceRolloutTable {
  release_id: string;
  device_id: string;
  stage_index: number;
  state: 'in_progress' | 'succeeded' | 'failed' | 'timed_out';
  started_at: number;
  deadline_at: number;
  updated_at: number;
}

export interface HealthReportTable {
  event_id: string;
  release_id: string;
  stage: string;
  window_start: number;
  window_end: number;
  devices_reporting: number;
  ota_failure_rate: number;
  inference_error_rate: number;
  p95_latency_ms: number;
  accuracy: number | null;
  mean_confidence: number;
  drift_score: number;
  baseline_version: number | null;
  baseline_devices_reporting: number | null;
  baseline_inference_error_rate: number | null;
  baseline_p95_latency_ms: number | null;
  baseline_accuracy: number | null;
  baseline_mean_confidence: number | null;
  received_at: number;
}

export interface OutboxTable {
  id: Generated<number>;
  topic: string;
  record_key: string;
  tenant_id: string;
  event_id: string;
  /** JSON of the event value (binary fields base64 with a marker, see outbox.ts). */
  payload: string;
  created_at: number;
  published_at: number | null;
}

export interface UsedAssertionTable {
  jti: string;
  device_id: string;
  expires_at: number;
}

export interface InboxTable {
  grp: string;
  event_id: string;
  processed_at: number;
}

export interface RegistryDatabase {
  tenants: TenantTable;
  models: ModelTable;
  versions: VersionTable;
  deltas: DeltaTable;
  devices: DeviceTable;
  releases: ReleaseTable;
  release_transitions: ReleaseTransitionTable;
  device_rollouts: DeviceRolloutTable;
  health_reports: HealthReportTable;
  outbox: OutboxTable;
  used_assertions: UsedAssertionTable;
  inbox: InboxTable;
}
