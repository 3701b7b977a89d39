// The registry's records as the rest of the service sees them (camelCase, parsed JSON). What the contracts define
// (version origins, rollout states, the health window) comes from the generated types of @edgefl/contracts.
import type { RolloutHealth, RolloutState, VersionOrigin } from '@edgefl/contracts';

export type { RolloutState, VersionOrigin };
export type VersionStatus = 'active' | 'deprecated';
export const LIVE_STATES: readonly RolloutState[] = ['PENDING', 'ROLLING_OUT', 'PAUSED', 'HALTED'];

export interface Tenant {
  id: string;
  name: string;
  /** The safe model every device of the tenant can run (falls back to it when it cannot run the current one). */
  baseline: { modelId: string; version: number } | null;
  createdAt: number;
}

export interface Model {
  id: string;
  tenantId: string;
  name: string;
  spec: unknown;
  deltaWindow: number;
  stableVersion: number | null;
  createdAt: number;
}

export interface ModelVersion {
  modelId: string;
  version: number;
  tenantId: string;
  label: string;
  parentVersion: number | null;
  origin: VersionOrigin;
  roundId: string | null;
  status: VersionStatus;
  sha256: string;
  sizeBytes: number;
  format: 'onnx' | 'artifact';
  chunkSize: number;
  merkleRoot: string;
  blobKey: string;
  wrappedKey: string;
  signingKeyId: string;
  signature: string;
  metrics: Record<string, number>;
  provenance: Record<string, unknown>;
  createdAt: number;
}

export interface Delta {
  modelId: string;
  fromVersion: number;
  toVersion: number;
  sha256: string;
  sizeBytes: number;
  mode: 'lossless' | 'bounded';
  blobKey: string;
  wrappedKey: string;
  createdAt: number;
}

export interface Device {
  id: string;
  tenantId: string;
  publicKey: string;
  modelId: string | null;
  group: string | null;
  hardwareClass: string | null;
  ramBytes: number | null;
  firmware: string | null;
  attributes: Record<string, string>;
  currentVersion: number | null;
  lastSeenAt: number | null;
  createdAt: number;
  /** When the device was revoked (epoch ms; revocation is final); null while it is active. */
  revokedAt: number | null;
  revokeReason: string | null;
  /** Device tokens whose `iat` (in ms) is before this instant no longer authenticate (revocation, key rotation). */
  tokensNotBefore: number | null;
}

export interface StageSpec {
  name: string;
  /** Share of eligible devices, 0 < p ≤ 100. */
  percentage: number;
}

/** The gates a stage must pass before the next (ML health gates included). */
export interface GateSpec {
  minDevicesReporting: number;
  minSoakMs: number;
  maxOtaFailureRate: number;
  maxInferenceErrorRate: number;
  /** p95 latency may be at most this multiple of the baseline's. */
  maxLatencyRatio: number;
  /** Accuracy may drop at most this much below the baseline (absolute, 0..1). */
  maxAccuracyDrop: number;
  /** Mean confidence may drop at most this much below the baseline (absolute, 0..1). */
  maxConfidenceDrop: number;
  /** Drift score (PSI vs the baseline) may be at most this. */
  maxDriftScore: number;
  /** A device that started the update and has not reported within this time counts as failed. */
  deviceTimeoutMs: number;
}

export interface Targeting {
  minRamBytes: number | null;
  firmwareRange: string | null;
  hardwareClasses: string[];
  groups: string[];
}

export interface BaselineSlis {
  p95LatencyMs: number | null;
  accuracy: number | null;
  meanConfidence: number | null;
}

/**
 * What a rollback rolled forward to (TUF: a device never installs a lower version): a new, higher version whose
 * artifact is byte-for-byte the restored version's, labelled `rollback-of-v<bad>`, parent = the bad version.
 */
export interface RollForward {
  /** The new version devices are served. */
  version: number;
  label: string;
  /** The version whose artifact it carries (the one devices ran before the bad release). */
  restoredVersion: number;
  /** sha256 of the artifact: equal to the restored version's. */
  sha256: string;
  /** The bad version it replaces (its parent). */
  rollbackOf: number;
}

export interface Release {
  id: string;
  tenantId: string;
  modelId: string;
  version: number;
  previousVersion: number | null;
  state: RolloutState;
  stageIndex: number;
  stages: StageSpec[];
  gates: GateSpec;
  targeting: Targeting;
  baseline: BaselineSlis | null;
  /** Set when the release was rolled back by rolling forward to a restoring version. */
  rollForward: RollForward | null;
  stageStartedAt: number;
  reason: string;
  revision: number;
  createdAt: number;
  updatedAt: number;
}

export interface ReleaseTransition {
  releaseId: string;
  seq: number;
  fromState: RolloutState;
  toState: RolloutState;
  stage: StageSpec;
  reason: string;
  at: number;
}

export type DeviceRolloutState = 'in_progress' | 'succeeded' | 'failed' | 'timed_out';

export interface DeviceRollout {
  releaseId: string;
  deviceId: string;
  stageIndex: number;
  state: DeviceRolloutState;
  startedAt: number;
  deadlineAt: number;
  updatedAt: number;
}

/** A stored rollout-health window: the event without what the release already says, plus when it arrived. */
export type HealthReport = Omit<RolloutHealth, 'tenant' | 'modelId' | 'version'> & { receivedAt: number };

export interface OutboxEvent {
  id: number;
  topic: string;
  key: string;
  tenantId: string;
  eventId: string;
  payload: string;
  createdAt: number;
}
