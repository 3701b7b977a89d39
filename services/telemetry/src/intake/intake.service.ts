import type {
  DeviceLifecycle,
  DevicePresence,
  DeviceTelemetry,
  InferenceLog,
  ModelVersionCreated,
  OtaStatus,
  ReleaseEvent,
  RoundEvent,
} from '@edgefl/contracts';
import { Inject, Injectable } from '@nestjs/common';
import { CLOCK, LOGGER, type Clock } from '@edgefl/service-kit';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { TelemetryConfig } from '../config.js';
import { TelemetryMetrics, type EventKind } from '../metrics/telemetry-metrics.js';
import {
  binOf,
  cloneRollup,
  CONFIDENCE_BINS,
  emptyRollup,
  addFeature,
  isCorrect,
  mergeInto,
  predictionBin,
  RESOLUTIONS,
  type Resolution,
  type Rollup,
} from '../sli/rollup.js';
import {
  otaKey,
  seriesKeyString,
  versionKey,
  type DeviceRecord,
  type OtaRecord,
  type SeriesKey,
  type TelemetryStore,
} from '../storage/telemetry-store.js';
import { TELEMETRY_CONFIG, TELEMETRY_STORE } from '../tokens.js';
import {
  heartbeatProblem,
  inferenceLogProblem,
  otaProblem,
  presenceProblem,
  type DropReason,
  type TimeBounds,
} from './validation.js';

/** One consumed event: its id and value (a TypedRecord fits). */
export interface IntakeEvent<V> {
  eventId: string;
  value: V;
}

export const DEFAULT_GROUP = 'default';
const TERMINAL = new Set(['ACTIVE', 'FAILED', 'ROLLED_BACK']);
const OTA_OUTCOME: Record<string, 'active' | 'failed' | 'rolled_back'> = {
  ACTIVE: 'active',
  FAILED: 'failed',
  ROLLED_BACK: 'rolled_back',
};

/** What one batch's effects gather before they are written in its transaction. */
class BatchScratch {
  readonly rollups = new Map<string, { key: SeriesKey; delta: Rollup }>();
  readonly devices = new Map<string, DeviceRecord>();
  /** Metric increments, applied once the batch committed. */
  readonly after: Array<() => void> = [];

  /** The delta of a series' bucket at both resolutions (1 minute and 1 hour) for an event at `ts`. */
  deltas(series: Omit<SeriesKey, 'res' | 'bucket'>, ts: number): Rollup[] {
    const out: Rollup[] = [];
    for (const res of Object.keys(RESOLUTIONS) as Resolution[]) {
      const size = RESOLUTIONS[res];
      const key: SeriesKey = { ...series, res, bucket: Math.floor(ts / size) * size };
      const k = seriesKeyString(key);
      let entry = this.rollups.get(k);
      if (!entry) {
        entry = { key, delta: emptyRollup() };
        this.rollups.set(k, entry);
      }
      out.push(entry.delta);
    }
    return out;
  }
}

/**
 * Intake: consumed events become device state, SLI rollups, OTA records, releases and rounds. A batch of records
 * is one transaction: the inbox marks of its fresh event ids (so a replayed record counts once) and all its
 * effects. Bad input is counted by reason (`edgefl_telemetry_events_dropped_total`) and dropped before anything
 * counts it. Device states, rollup buckets and known versions are cached in capped LRUs (write-through: the store
 * is the truth, an evicted entry is re-read), evictions counted.
 */
@Injectable()
export class IntakeService {
  private readonly devices: LRUCache<string, DeviceRecord>;
  private readonly rollups: LRUCache<string, Rollup>;
  private readonly versions: LRUCache<string, true>;
  /** Intake transactions run one at a time (the caches mirror what committed). */
  private queue: Promise<unknown> = Promise.resolve();
  private readonly bounds: Omit<TimeBounds, 'now'>;

  constructor(
    @Inject(TELEMETRY_STORE) private readonly store: TelemetryStore,
    @Inject(TELEMETRY_CONFIG) config: TelemetryConfig,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly metrics: TelemetryMetrics,
  ) {
    const evicted = (kind: 'device' | 'rollup' | 'version') => (_v: unknown, _k: string, reason: string) => {
      if (reason === 'evict') metrics.evicted.inc({ kind });
    };
    this.devices = new LRUCache<string, DeviceRecord>({
      max: config.own.limits.devices,
      dispose: evicted('device'),
    });
    this.rollups = new LRUCache<string, Rollup>({
      max: config.own.limits.series,
      dispose: evicted('rollup'),
    });
    this.versions = new LRUCache<string, true>({
      max: config.own.limits.versions,
      dispose: evicted('version'),
    });
    metrics.trackSeries('device', () => this.devices.size);
    metrics.trackSeries('rollup', () => this.rollups.size);
    metrics.trackSeries('version', () => this.versions.size);
    this.bounds = { maxFutureMs: config.own.intake.maxFutureMs, maxPastMs: config.own.intake.maxPastMs };
  }

  /** Records that did not decode: counted and dropped. */
  undecodable(kind: EventKind, n: number, detail?: string): void {
    if (n === 0) return;
    this.metrics.drop('undecodable', n);
    this.logger.warn({ kind, records: n, detail }, 'undecodable records dropped');
  }

  // ── device-scoped events ────────────────────────────────────────────────────────────────────────────────────

  async inferenceLogs(events: readonly IntakeEvent<InferenceLog>[]): Promise<void> {
    await this.deviceBatch(
      'inference',
      events,
      inferenceLogProblem,
      (e) => ({ modelId: e.modelId, version: e.modelVersion }),
      (e, device, s) => {
        const series = { tenant: e.tenant, modelId: e.modelId, version: e.modelVersion, group: device.group };
        const failed = e.errorCode !== null;
        const latencyUs = Math.max(1, Math.round(e.latencyMs * 1000));
        for (const d of s.deltas(series, e.timestamp)) {
          d.inferences++;
          d.latency.recordValue(latencyUs);
          if (e.source === 'CLOUD') d.escalations++;
          if (e.source === 'EDGE_FALLBACK') d.fallbacks++;
          if (failed) {
            d.errors++;
            continue;
          }
          d.confidenceSum += e.confidence;
          d.confidenceBins[binOf(e.confidence, CONFIDENCE_BINS)]!++;
          d.predictionBins[predictionBin(e.prediction)]!++;
          if (e.label !== null) {
            d.labeled++;
            if (isCorrect(e.prediction, e.label)) d.correct++;
          }
        }
        // an on-device log says what the device runs (a cloud-tier answer runs the cloud's version, not the device's)
        if (e.source !== 'CLOUD' && e.timestamp >= (device.lastSeenAt ?? 0)) {
          device.modelId = e.modelId;
          device.version = e.modelVersion;
        }
        touch(device, e.timestamp);
        const labels = {
          tenant: e.tenant,
          model: e.modelId,
          version: String(e.modelVersion),
          group: this.metrics.groupLabel(e.tenant, device.group),
        };
        s.after.push(() => {
          this.metrics.inference.inc({ ...labels, outcome: failed ? 'error' : 'ok' });
          this.metrics.latency.observe(labels, e.latencyMs / 1000);
          if (e.source === 'CLOUD') this.metrics.escalations.inc(labels);
        });
      },
    );
  }

  async heartbeats(events: readonly IntakeEvent<DeviceTelemetry>[]): Promise<void> {
    await this.deviceBatch(
      'heartbeat',
      events,
      heartbeatProblem,
      (e) =>
        e.modelId !== null && e.modelVersion !== null
          ? { modelId: e.modelId, version: e.modelVersion }
          : null,
      (e, device, s) => {
        if (e.group !== null) device.group = e.group;
        if (e.modelId !== null && e.modelVersion !== null && e.timestamp >= (device.lastSeenAt ?? 0)) {
          device.modelId = e.modelId;
          device.version = e.modelVersion;
        }
        touch(device, e.timestamp);
        if (e.modelId === null || e.modelVersion === null) return;
        const series = { tenant: e.tenant, modelId: e.modelId, version: e.modelVersion, group: device.group };
        for (const d of s.deltas(series, e.timestamp)) {
          d.heartbeats++;
          for (const f of e.featureSummaries ?? []) addFeature(d, f);
        }
      },
    );
  }

  async presence(events: readonly IntakeEvent<DevicePresence>[]): Promise<void> {
    await this.deviceBatch(
      'presence',
      events,
      presenceProblem,
      () => null,
      (e, device) => {
        if (e.timestamp < (device.presenceAt ?? 0)) return; // an older state arriving late changes nothing
        device.presence = e.status;
        device.presenceAt = e.timestamp;
        if (e.status === 'ONLINE') touch(device, e.timestamp);
      },
    );
  }

  async otaStatuses(events: readonly IntakeEvent<OtaStatus>[]): Promise<void> {
    const existing = new Map<string, OtaRecord>();
    const changed = new Map<string, OtaRecord>();
    await this.deviceBatch(
      'ota',
      events,
      otaProblem,
      (e) => ({ modelId: e.modelId, version: e.toVersion }),
      (e, device, s) => {
        const k = otaKey(e.deviceId, e.modelId, e.toVersion);
        const before = changed.get(k) ?? existing.get(k) ?? null;
        const row: OtaRecord = before
          ? { ...before }
          : {
              deviceId: e.deviceId,
              modelId: e.modelId,
              toVersion: e.toVersion,
              tenant: e.tenant,
              group: device.group,
              releaseId: e.releaseId,
              fromVersion: e.fromVersion,
              state: e.state,
              viaDelta: e.viaDelta,
              bytesDownloaded: 0,
              bytesTotal: e.bytesTotal,
              startedAt: e.timestamp,
              finishedAt: null,
              updatedAt: e.timestamp,
            };
        row.startedAt = Math.min(row.startedAt, e.timestamp);
        row.bytesDownloaded = Math.max(row.bytesDownloaded, e.bytesDownloaded);
        row.bytesTotal = e.bytesTotal ?? row.bytesTotal;
        row.releaseId = e.releaseId ?? row.releaseId;
        row.fromVersion = e.fromVersion ?? row.fromVersion;
        row.viaDelta = row.viaDelta || e.viaDelta;
        const wasTerminal = before !== null && TERMINAL.has(before.state);
        // a terminal state is final for this OTA (a later retry of the same version starts after it)
        if (!wasTerminal || TERMINAL.has(e.state)) {
          if (e.timestamp >= row.updatedAt || !before) {
            row.state = e.state;
            row.updatedAt = e.timestamp;
          }
        }
        if (TERMINAL.has(e.state) && (!wasTerminal || before.state !== e.state)) {
          row.state = e.state;
          row.finishedAt = e.timestamp;
          row.updatedAt = Math.max(row.updatedAt, e.timestamp);
          const outcome = OTA_OUTCOME[e.state]!;
          s.after.push(() => this.metrics.ota.inc({ tenant: e.tenant, model: e.modelId, outcome }));
        }
        if (e.state === 'ACTIVE') {
          device.modelId = e.modelId;
          device.version = e.toVersion;
        }
        touch(device, e.timestamp);
        changed.set(k, row);
      },
      {
        prefetch: async (tx, accepted) => {
          const rows = await tx.getOta(
            accepted.map((e) => ({
              deviceId: e.value.deviceId,
              modelId: e.value.modelId,
              toVersion: e.value.toVersion,
            })),
          );
          for (const [k, v] of rows) existing.set(k, v);
        },
        write: async (tx) => {
          await tx.putOta([...changed.values()]);
        },
      },
    );
  }

  // ── control events ──────────────────────────────────────────────────────────────────────────────────────────

  async lifecycle(events: readonly IntakeEvent<DeviceLifecycle>[]): Promise<void> {
    await this.controlBatch('lifecycle', events, async (tx, fresh) => {
      const known = await this.loadDevices(
        tx,
        fresh.map((e) => e.value.deviceId),
      );
      const changed = new Map<string, DeviceRecord>();
      for (const { value: e } of fresh) {
        const before = changed.get(e.deviceId) ?? known.get(e.deviceId);
        const device: DeviceRecord = before
          ? { ...before }
          : {
              deviceId: e.deviceId,
              tenant: e.tenant,
              registeredAt: null,
              revokedAt: null,
              group: DEFAULT_GROUP,
              modelId: null,
              version: null,
              lastSeenAt: null,
              presence: null,
              presenceAt: null,
            };
        if (device.tenant !== e.tenant) continue; // a device id of another tenant: never re-homed by an event
        if (e.event === 'REGISTERED') {
          device.registeredAt = device.registeredAt ?? e.timestamp;
        } else if (e.event === 'REVOKED') device.revokedAt = e.timestamp;
        else if (device.registeredAt === null) device.registeredAt = e.timestamp; // UPDATED, KEY_ROTATED: it exists
        changed.set(e.deviceId, device);
      }
      await tx.putDevices([...changed.values()]);
      return () => {
        for (const d of changed.values()) this.devices.set(d.deviceId, d);
      };
    });
  }

  async modelVersions(events: readonly IntakeEvent<ModelVersionCreated>[]): Promise<void> {
    await this.controlBatch('version', events, async (tx, fresh) => {
      const rows = fresh.map(({ value: e }) => ({
        modelId: e.modelId,
        version: e.version,
        tenant: e.tenant,
        createdAt: e.createdAt,
      }));
      await tx.putVersions(rows);
      return () => {
        for (const r of rows) this.versions.set(versionKey(r.modelId, r.version), true);
      };
    });
  }

  async releaseEvents(events: readonly IntakeEvent<ReleaseEvent>[]): Promise<void> {
    await this.controlBatch('release', events, async (tx, fresh) => {
      const versions: Array<{ modelId: string; version: number; tenant: string; createdAt: number }> = [];
      for (const { value: e } of fresh) {
        const current = await tx.getRelease(e.releaseId);
        if ('io.edgefl.registry.ReleaseManifest' in e.event) {
          const m = e.event['io.edgefl.registry.ReleaseManifest'];
          versions.push({
            modelId: e.modelId,
            version: m.version,
            tenant: e.tenant,
            createdAt: e.occurredAt,
          });
          if (m.rollout.stage === 'rollback') continue; // the roll-forward version of a rolled-back release
          const stageChanged = !current || current.stage !== m.rollout.stage || current.version !== m.version;
          await tx.putRelease({
            releaseId: e.releaseId,
            tenant: e.tenant,
            modelId: e.modelId,
            version: m.version,
            state: current?.state ?? 'ROLLING_OUT',
            stage: m.rollout.stage,
            percentage: m.rollout.percentage,
            groups: m.targeting.groups,
            stageStartedAt: stageChanged ? e.occurredAt : current.stageStartedAt,
            updatedAt: e.occurredAt,
          });
        } else {
          const t = e.event['io.edgefl.registry.RolloutTransition'];
          const stageChanged = !current || current.stage !== t.stage.stage || t.fromState === 'PENDING';
          await tx.putRelease({
            releaseId: e.releaseId,
            tenant: e.tenant,
            modelId: e.modelId,
            version: current?.version ?? 0, // 0: not known until its manifest arrives
            state: t.toState,
            stage: t.stage.stage,
            percentage: t.stage.percentage,
            groups: current?.groups ?? [],
            stageStartedAt: stageChanged ? e.occurredAt : current.stageStartedAt,
            updatedAt: e.occurredAt,
          });
        }
      }
      await tx.putVersions(versions);
      return () => {
        for (const v of versions) this.versions.set(versionKey(v.modelId, v.version), true);
      };
    });
  }

  async rounds(events: readonly IntakeEvent<RoundEvent>[]): Promise<void> {
    await this.controlBatch('round', events, async (tx, fresh) => {
      for (const { value: e } of fresh) {
        if (!('io.edgefl.fl.RoundResult' in e.event)) continue;
        const r = e.event['io.edgefl.fl.RoundResult'];
        if (
          !Number.isFinite(r.epsilonSpent) ||
          r.epsilonSpent < 0 ||
          !Number.isFinite(r.deltaSpent) ||
          r.deltaSpent < 0
        ) {
          this.metrics.drop('invalid_value');
          continue;
        }
        await tx.putRound({
          roundId: e.roundId,
          tenant: e.tenant,
          modelId: e.modelId,
          baseVersion: r.baseVersion,
          participants: r.participants.length,
          epsilonSpent: r.epsilonSpent,
          deltaSpent: r.deltaSpent,
          metrics: r.metrics,
          finishedAt: e.occurredAt,
        });
      }
      return () => undefined;
    });
  }

  // ── the batch machinery ─────────────────────────────────────────────────────────────────────────────────────

  /** Runs fn after every earlier intake transaction finished (the caches mirror commits in order). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Events from devices: validated, their device and version known, then applied in one transaction. */
  private async deviceBatch<
    V extends { eventId: string; tenant: string; deviceId: string; timestamp: number },
  >(
    kind: EventKind,
    events: readonly IntakeEvent<V>[],
    problem: (value: V, bounds: TimeBounds) => DropReason | null,
    versionOf: (value: V) => { modelId: string; version: number } | null,
    apply: (value: V, device: DeviceRecord, scratch: BatchScratch) => void,
    hooks: {
      prefetch?: (tx: TelemetryStore, accepted: IntakeEvent<V>[]) => Promise<void>;
      write?: (tx: TelemetryStore) => Promise<void>;
    } = {},
  ): Promise<void> {
    if (events.length === 0) return;
    await this.serial(async () => {
      const drops = new Map<DropReason, number>();
      const drop = (reason: DropReason) => drops.set(reason, (drops.get(reason) ?? 0) + 1);
      const bounds = { ...this.bounds, now: this.clock.now() };
      const seen = new Set<string>();
      let candidates: IntakeEvent<V>[] = [];
      for (const e of events) {
        if (seen.has(e.eventId)) {
          drop('duplicate');
          continue;
        }
        seen.add(e.eventId);
        const reason = problem(e.value, bounds);
        if (reason) drop(reason);
        else candidates.push(e);
      }
      const devices = await this.loadDevices(
        this.store,
        candidates.map((e) => e.value.deviceId),
      );
      await this.loadVersions(candidates.map((e) => versionOf(e.value)).filter((v) => v !== null));
      candidates = candidates.filter((e) => {
        const device = devices.get(e.value.deviceId);
        if (
          !device ||
          device.registeredAt === null ||
          device.revokedAt !== null ||
          device.tenant !== e.value.tenant
        ) {
          drop('unknown_device');
          return false;
        }
        const v = versionOf(e.value);
        if (v && !this.versions.has(versionKey(v.modelId, v.version))) {
          drop('unknown_version');
          return false;
        }
        return true;
      });
      const scratch = new BatchScratch();
      let fresh: IntakeEvent<V>[] = [];
      const merged = new Map<string, Rollup>();
      try {
        await this.store.transaction(async (tx) => {
          const claimed = await tx.claimEvents(
            'telemetry',
            candidates.map((e) => e.eventId),
            bounds.now,
          );
          fresh = candidates.filter((e) => claimed.has(e.eventId));
          if (fresh.length === 0) return;
          await hooks.prefetch?.(tx, fresh);
          for (const e of fresh) {
            const id = e.value.deviceId;
            let device = scratch.devices.get(id);
            if (!device) {
              device = { ...devices.get(id)! };
              scratch.devices.set(id, device);
            }
            apply(e.value, device, scratch);
          }
          await this.mergeRollups(tx, scratch, merged);
          await tx.putDevices([...scratch.devices.values()]);
          await hooks.write?.(tx);
        });
      } catch (error) {
        // nothing of this batch committed: forget what the caches might hold of it, the bus retries the batch
        for (const k of merged.keys()) this.rollups.delete(k);
        throw error;
      }
      for (const [k, r] of merged) this.rollups.set(k, r);
      for (const d of scratch.devices.values()) this.devices.set(d.deviceId, d);
      const replayed = candidates.length - fresh.length; // processed before: a replay counts once
      if (replayed > 0) drops.set('duplicate', (drops.get('duplicate') ?? 0) + replayed);
      for (const [reason, n] of drops) this.metrics.drop(reason, n);
      if (fresh.length > 0) this.metrics.ingested.inc({ kind }, fresh.length);
      for (const f of scratch.after) f();
    });
  }

  /** Control events (registrations, versions, releases, rounds): claimed and applied in one transaction. */
  private async controlBatch<V>(
    kind: EventKind,
    events: readonly IntakeEvent<V>[],
    apply: (tx: TelemetryStore, fresh: IntakeEvent<V>[]) => Promise<() => void>,
  ): Promise<void> {
    if (events.length === 0) return;
    await this.serial(async () => {
      const unique = [...new Map(events.map((e) => [e.eventId, e])).values()];
      let fresh: IntakeEvent<V>[] = [];
      let commit: () => void = () => undefined;
      await this.store.transaction(async (tx) => {
        const claimed = await tx.claimEvents(
          'telemetry',
          unique.map((e) => e.eventId),
          this.clock.now(),
        );
        fresh = unique.filter((e) => claimed.has(e.eventId));
        if (fresh.length > 0) commit = await apply(tx, fresh);
      });
      commit();
      this.metrics.drop('duplicate', events.length - fresh.length);
      if (fresh.length > 0) this.metrics.ingested.inc({ kind }, fresh.length);
    });
  }

  /** Adds the batch's deltas to the stored buckets (cached, else read) and writes them. */
  private async mergeRollups(
    tx: TelemetryStore,
    scratch: BatchScratch,
    merged: Map<string, Rollup>,
  ): Promise<void> {
    if (scratch.rollups.size === 0) return;
    const missing = [...scratch.rollups].filter(([k]) => !this.rollups.has(k)).map(([, v]) => v.key);
    const stored = missing.length > 0 ? await tx.getRollups(missing) : new Map<string, Rollup>();
    const records = [];
    for (const [k, { key, delta }] of scratch.rollups) {
      const cached = this.rollups.get(k);
      const base = cached ? cloneRollup(cached) : (stored.get(k) ?? emptyRollup());
      const next = mergeInto(base, delta);
      merged.set(k, next);
      records.push({ ...key, rollup: next });
    }
    await tx.putRollups(records);
  }

  /** Device states by id: cached, else read from the store (and cached). */
  private async loadDevices(
    store: TelemetryStore,
    ids: readonly string[],
  ): Promise<Map<string, DeviceRecord>> {
    const out = new Map<string, DeviceRecord>();
    const missing: string[] = [];
    for (const id of new Set(ids)) {
      const d = this.devices.get(id);
      if (d) out.set(id, d);
      else missing.push(id);
    }
    if (missing.length > 0) {
      for (const [id, d] of await store.getDevices(missing)) {
        out.set(id, d);
        this.devices.set(id, d);
      }
    }
    return out;
  }

  /** Caches which of these versions exist. */
  private async loadVersions(keys: ReadonlyArray<{ modelId: string; version: number }>): Promise<void> {
    const missing = new Map<string, { modelId: string; version: number }>();
    for (const k of keys) {
      const key = versionKey(k.modelId, k.version);
      if (!this.versions.has(key)) missing.set(key, k);
    }
    if (missing.size === 0) return;
    for (const key of await this.store.knownVersions([...missing.values()])) this.versions.set(key, true);
  }
}

function touch(device: DeviceRecord, ts: number): void {
  device.lastSeenAt = Math.max(device.lastSeenAt ?? 0, ts);
}
