import type { EncodedRollup } from '../sli/rollup.js';

/** The telemetry store's tables (snake_case columns; epoch milliseconds in bigint columns). */
export interface TelemetryDatabase {
  /** The transactional inbox: event ids a consumer group processed, written in the transaction of the effects. */
  inbox: { grp: string; event_id: string; processed_at: number };
  /** Devices as telemetry knows them: registration (lifecycle), what they run, when they were last heard from. */
  devices: {
    device_id: string;
    tenant: string;
    registered_at: number | null;
    revoked_at: number | null;
    grp: string;
    model_id: string | null;
    version: number | null;
    last_seen_at: number | null;
    presence: string | null;
    presence_at: number | null;
  };
  /** Model versions that exist (model version events, release manifests). */
  versions: { model_id: string; version: number; tenant: string; created_at: number };
  /** SLI rollups per tenant × model × version × device group and time bucket, at two resolutions (`m`, `h`). */
  rollups: {
    res: string;
    tenant: string;
    model_id: string;
    version: number;
    grp: string;
    bucket: number;
  } & EncodedRollup;
  /** One OTA of one device to one version: its progress and outcome. */
  ota: {
    device_id: string;
    model_id: string;
    to_version: number;
    tenant: string;
    grp: string;
    release_id: string | null;
    from_version: number | null;
    state: string;
    via_delta: number;
    bytes_downloaded: number;
    bytes_total: number | null;
    started_at: number;
    finished_at: number | null;
    updated_at: number;
  };
  /** Releases as the registry's release events describe them. */
  releases: {
    release_id: string;
    tenant: string;
    model_id: string;
    version: number;
    state: string;
    stage: string;
    percentage: number;
    groups: string;
    stage_started_at: number;
    updated_at: number;
  };
  /** Round results of the aggregator: privacy spent and metrics. */
  rounds: {
    round_id: string;
    tenant: string;
    model_id: string;
    base_version: number;
    participants: number;
    epsilon_spent: number;
    delta_spent: number;
    metrics: string;
    finished_at: number;
  };
  /** Service-level objectives per tenant and model (from config or the API). */
  slos: {
    tenant: string;
    model_id: string;
    /** The SLI (AVAILABILITY, LATENCY_P99, FRESHNESS, OTA_SUCCESS); model_id '' for a tenant-wide objective. */
    kind: string;
    target: number;
    threshold_ms: number | null;
    window_ms: number;
    updated_at: number;
  };
  /** Drift and SLO alerts raised (what was published on the bus). */
  alerts: {
    id: string;
    kind: string;
    tenant: string;
    model_id: string;
    version: number | null;
    name: string;
    severity: string;
    state: string;
    detail: string;
    at: number;
  };
}
