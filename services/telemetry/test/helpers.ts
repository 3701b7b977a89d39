import { randomUUID } from 'node:crypto';
import type {
  DeviceLifecycle,
  DeviceTelemetry,
  InferenceLog,
  ModelVersionCreated,
  OtaStatus,
} from '@edgefl/contracts';
import { openCatalogBus } from '@edgefl/bus';
import { httpClient, startTestService, type TestBusTarget } from '@edgefl/testing';
import { bootstrap } from '../src/main.js';

export const TOKEN = `telemetry-test-${randomUUID()}`;
/** A JSON request with the telemetry's API token. */
export const call = httpClient({ authorization: `Bearer ${TOKEN}` });

/** Fast cadences so tests see health, drift and SLO evaluations within their polling bound. */
export const FAST = {
  TELEMETRY_HEALTH_INTERVAL_MS: '200',
  TELEMETRY_DRIFT_INTERVAL_MS: '200',
  TELEMETRY_SLO_INTERVAL_MS: '200',
} as const;

export function startTelemetry(env: Record<string, string> = {}) {
  return startTestService(bootstrap, { TELEMETRY_ADMIN_TOKEN: TOKEN, ...env });
}

export function busClientOf(target: TestBusTarget) {
  return openCatalogBus(target, 'edgefl-telemetry-test');
}

/** Reads one metric sample from /metrics: the first series of `name` holding every label given; 0 when absent. */
export async function metric(
  url: string,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  for (const line of text.split('\n')) {
    const [series, value] = line.split(' ');
    if (series !== name && !series?.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`))) return Number(value);
  }
  return 0;
}

export const registered = (tenant: string, deviceId: string, at = Date.now()): DeviceLifecycle => ({
  eventId: randomUUID(),
  tenant,
  deviceId,
  event: 'REGISTERED',
  publicKey: null,
  keyId: null,
  previousKeyId: null,
  reason: null,
  tokensNotBefore: null,
  timestamp: at,
});

export const versionCreated = (tenant: string, modelId: string, version: number): ModelVersionCreated => ({
  eventId: randomUUID(),
  tenant,
  modelId,
  version,
  label: `v${version}`,
  parentVersion: version > 1 ? version - 1 : null,
  origin: 'UPLOAD',
  roundId: null,
  artifactUri: `registry://${modelId}/${version}`,
  sha256: '0'.repeat(64),
  sizeBytes: 1000,
  signingKeyId: 'k',
  metrics: {},
  createdAt: Date.now(),
});

export const heartbeat = (
  tenant: string,
  deviceId: string,
  model: { modelId: string; version: number },
  group: string | null,
  patch: Partial<DeviceTelemetry> = {},
): DeviceTelemetry => ({
  eventId: randomUUID(),
  tenant,
  deviceId,
  modelId: model.modelId,
  modelVersion: model.version,
  ramTotalBytes: 1_000_000,
  ramFreeBytes: 500_000,
  cpuPercent: 10,
  accelerator: 'NONE',
  batteryPercent: null,
  networkType: 'WIFI',
  firmwareVersion: '1.0.0',
  timestamp: Date.now(),
  group,
  featureSummaries: null,
  ...patch,
});

export const inferenceLog = (
  tenant: string,
  deviceId: string,
  model: { modelId: string; version: number },
  patch: Partial<InferenceLog> = {},
): InferenceLog => ({
  eventId: randomUUID(),
  tenant,
  deviceId,
  modelId: model.modelId,
  modelVersion: model.version,
  prediction: [0.9],
  label: null,
  confidence: 0.9,
  latencyMs: 5,
  inputHash: 'h',
  source: 'EDGE',
  errorCode: null,
  cacheHit: null,
  arm: null,
  timestamp: Date.now(),
  ...patch,
});

export const otaStatus = (
  tenant: string,
  deviceId: string,
  modelId: string,
  toVersion: number,
  state: OtaStatus['state'],
  patch: Partial<OtaStatus> = {},
): OtaStatus => ({
  eventId: randomUUID(),
  tenant,
  deviceId,
  modelId,
  releaseId: null,
  fromVersion: toVersion - 1,
  toVersion,
  state,
  viaDelta: false,
  errorCode: null,
  errorMessage: null,
  bytesDownloaded: 0,
  bytesTotal: null,
  timestamp: Date.now(),
  ...patch,
});
