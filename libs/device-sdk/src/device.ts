import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  mqttDeviceTopic,
  type FlUpdate,
  type InferenceLog,
  type MessageAck,
  type OtaStatus,
  type RecordName,
  type RecordTypes,
  type RoundEvent,
} from '@edgefl/contracts/edge';
import { decodeArtifact, isArtifact, readOnnxTensors, type ModelSpec, type NamedTensor } from '@edgefl/model';
import { Outbox, type OutboxStats } from './buffer/outbox.js';
import { SyncScheduler, type SyncStrategy } from './buffer/sync.js';
import { DeviceError } from './errors.js';
import { FederatedClient, type FederatedOptions, type RoundOutcome } from './fl/federated-client.js';
import type { EligibilityPolicy } from './fl/eligibility.js';
import { FeatureSummarizer, type FeatureSummaryOptions } from './feature-summary.js';
import { heartbeat, hostProbe, type SystemProbe } from './heartbeat.js';
import { DeviceIdentity } from './identity.js';
import { MqttEscalator, OipEscalator } from './inference/escalation.js';
import { loadModel, ModelRunner, type SessionOptions } from './inference/model-runner.js';
import {
  TieredInference,
  type CascadeStage,
  type EscalationRequest,
  type Prediction,
} from './inference/tiered.js';
import { replaceAtomically } from './ota/fs-atomic.js';
import { ModelStore } from './ota/model-store.js';
import { OtaClient, type OtaOutcome, type OtaStep } from './ota/ota-client.js';
import type { DownloadLimits } from './ota/download.js';
import { TrustStore } from './ota/trust.js';
import { RegistryClient, RegistryHttpError, type Fetch } from './registry-client.js';
import { deviceCodec, MqttLink } from './transport/mqtt-link.js';
import { MqttSecAggChannel } from './transport/secagg-channel.js';
import type { Dataset } from './training/trainer.js';

export interface EdgeDeviceOptions {
  registryUrl: string;
  /** mqtt:// or mqtts:// URL of the gateway; without it the device runs offline (HTTP only, buffer kept). */
  mqttUrl?: string;
  tenant: string;
  deviceId: string;
  keyFile: string;
  dataDir: string;
  /** The model this device runs; default: the one the registry assigns, pinned at the first answer. */
  modelId?: string;
  hardware?: { class?: string; ramBytes?: number; firmware?: string };
  /** Registers the device when the registry does not know it (management API token). */
  adminToken?: string;
  /** Local training data: a data set, or a function making one for the installed model's spec. */
  data?: Dataset | ((spec: ModelSpec) => Dataset | null);
  eligibility?: EligibilityPolicy;
  federated?: Omit<FederatedOptions, 'policy'>;
  sync?: { strategy?: SyncStrategy; intervalMs?: number; budgetBytes?: number };
  heartbeatIntervalMs?: number;
  /** The device group / cohort label its heartbeats carry (`DeviceTelemetry.group`); SLIs and cohorts split by it. */
  group?: string;
  /**
   * Attach per-input summaries (running mean/std/min/max, fixed-edge bins) of the rows `predict` runs on to each
   * heartbeat, for drift detection; off without this option.
   */
  featureSummaries?: FeatureSummaryOptions;
  /** HTTP manifest poll (fallback to the retained MQTT manifest), default 60 s. */
  pollIntervalMs?: number;
  inference?: {
    escalationThreshold?: number;
    escalationTimeoutMs?: number;
    /** 'mqtt' (through the gateway, the default when connected), an http(s) URL of the inference service, or 'none'. */
    cloud?: 'mqtt' | 'none' | string;
    cascade?: CascadeStage[];
    labels?: string[];
    /** Keep low-confidence inputs in the buffer for local use (off by default: a per-tenant privacy policy). */
    keepHardSamples?: boolean;
  };
  download?: Partial<DownloadLimits>;
  session?: SessionOptions;
  probe?: SystemProbe;
  fetch?: Fetch;
  now?: () => number;
  onStep?: (step: OtaStep) => void;
  /** Every OTA status, as reported (also buffered for `ota-status`). */
  onOtaStatus?: (status: OtaStatus) => void;
  onRound?: (outcome: RoundOutcome) => void;
  /**
   * Network conditions (a simulator's network profile, a test's faults): awaited before every buffered MQTT publish
   * (FL updates, OTA statuses, telemetry, inference logs). A delay is the link's latency and transfer time; a
   * rejection is a lost message: the record stays in the buffer and goes again at the next flush, as after a lost
   * PUBACK.
   */
  beforePublish?: (topic: string, bytes: number) => Promise<void>;
  log?: (line: string) => void;
}

const FIRMWARE_DEFAULT = 'edgefl-device-sdk/0.1.0';

/**
 * One edge device: identity, OTA, inference, training and the federated client, heartbeats, the offline buffer and
 * its sync, over one MQTT connection and the registry's HTTP API. Cheap enough to run many per process (the fleet
 * simulator): timers are unref'd, the Avro codec is shared, sessions use one intra-op thread.
 */
export class EdgeDevice {
  readonly options: EdgeDeviceOptions;
  readonly identity: DeviceIdentity;
  readonly registry: RegistryClient;
  readonly store: ModelStore;
  readonly trust: TrustStore;
  readonly outbox: Outbox;
  readonly runner = new ModelRunner();
  readonly ota: OtaClient;
  readonly federated: FederatedClient;
  /** The `secagg` channel secure-aggregation rounds run on (the default `secAggChannel` of the federated client). */
  readonly secAgg: MqttSecAggChannel;
  readonly inference: TieredInference;
  readonly #now: () => number;
  readonly #probe: SystemProbe;
  /** Summaries of the inputs inferred on since the last heartbeat; null when `featureSummaries` is not configured. */
  readonly features: FeatureSummarizer | null;
  #modelId: string | null;
  #link: MqttLink | null = null;
  #sync: SyncScheduler;
  #timers: NodeJS.Timeout[] = [];
  #retryTimer: NodeJS.Timeout | null = null;
  #lastInference = 0;
  #logs: InferenceLog[] = [];
  #logTimer: NodeJS.Timeout | null = null;
  #stopping = false;
  #offline = false;
  #reconnect: (() => Promise<void>) | null = null;

  constructor(options: EdgeDeviceOptions) {
    this.options = options;
    this.#now = options.now ?? Date.now;
    this.#probe = options.probe ?? hostProbe();
    if (
      options.group !== undefined &&
      (typeof options.group !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(options.group))
    ) {
      throw new DeviceError('bad-config', 'group must be 1..128 printable ASCII characters without spaces');
    }
    this.features = options.featureSummaries ? new FeatureSummarizer(options.featureSummaries) : null;
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    this.identity = DeviceIdentity.loadOrCreate(options.deviceId, options.keyFile);
    this.registry = new RegistryClient({
      baseUrl: options.registryUrl,
      identity: this.identity,
      now: this.#now,
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
    this.store = new ModelStore(join(options.dataDir, 'models'));
    this.trust = new TrustStore(join(options.dataDir, 'trust.json'));
    this.outbox = new Outbox(join(options.dataDir, 'buffer.sqlite'), {
      now: this.#now,
      ...(options.sync?.budgetBytes ? { budgetBytes: options.sync.budgetBytes } : {}),
    });
    this.#modelId = options.modelId ?? this.#pinnedModel();
    const modelIdOf = () => this.#modelId ?? '';
    this.ota = new OtaClient({
      device: {
        tenant: options.tenant,
        deviceId: options.deviceId,
        get modelId() {
          return modelIdOf();
        },
        ...(options.hardware?.class ? { hardwareClass: options.hardware.class } : {}),
      },
      store: this.store,
      trust: this.trust,
      registry: this.registry,
      report: (s) => this.#otaStatus(s),
      activate: (model) => this.runner.swap(model),
      now: this.#now,
      ...(options.download ? { limits: options.download } : {}),
      ...(options.session ? { session: options.session } : {}),
      ...(options.onStep ? { onStep: options.onStep } : {}),
    });
    this.#sync = new SyncScheduler(this.outbox, {
      strategy: options.sync?.strategy ?? 'adaptive',
      intervalMs: options.sync?.intervalMs ?? 10_000,
      conditions: () => {
        const battery = this.#probe.battery();
        return {
          connected: this.#link?.connected ?? false,
          networkType: this.#probe.networkType(),
          batteryPercent: battery.percent,
          charging: battery.charging,
        };
      },
      publish: async (topic, payload) => {
        if (!this.#link) throw new DeviceError('transport', 'not connected');
        await this.options.beforePublish?.(topic, payload.byteLength);
        const link = this.#link;
        if (!link) throw new DeviceError('transport', 'not connected');
        return link.publish(topic, payload, 1);
      },
    });
    this.secAgg = new MqttSecAggChannel({ link: () => this.#link, key: this.identity.key });
    this.federated = new FederatedClient(
      {
        tenant: options.tenant,
        deviceId: options.deviceId,
        key: this.identity.key,
        currentModel: () => this.#currentWeights(),
        data: (spec) => (typeof options.data === 'function' ? options.data(spec) : (options.data ?? null)),
        conditions: () => {
          const battery = this.#probe.battery();
          return {
            batteryPercent: battery.percent,
            charging: battery.charging,
            networkType: this.#probe.networkType(),
            idle: this.#now() - this.#lastInference > 5_000,
            hardwareClass: options.hardware?.class ?? null,
            freeRamBytes: this.#probe.ram().freeBytes,
            modelVersion: this.store.active?.version ?? null,
          };
        },
        sendUpdate: (update, deadline, signal) => this.#sendUpdate(update, deadline, signal),
        now: this.#now,
      },
      {
        secAggChannel: this.secAgg,
        ...options.federated,
        ...(options.eligibility ? { policy: options.eligibility } : {}),
      },
    );
    this.inference = this.#tiered();
  }

  get modelId(): string | null {
    return this.#modelId;
  }

  get connected(): boolean {
    return this.#link?.connected ?? false;
  }

  get link(): MqttLink | null {
    return this.#link;
  }

  #log(line: string): void {
    this.options.log?.(line);
  }

  #pinnedModel(): string | null {
    const path = join(this.options.dataDir, 'device.json');
    if (!existsSync(path)) return null;
    const value = JSON.parse(readFileSync(path, 'utf8')) as { modelId?: unknown };
    return typeof value.modelId === 'string' ? value.modelId : null;
  }

  #tiered(): TieredInference {
    const o = this.options.inference ?? {};
    const cloud = o.cloud ?? 'mqtt';
    const escalator =
      cloud === 'none'
        ? undefined
        : cloud === 'mqtt'
          ? {
              infer: (req: EscalationRequest, signal: AbortSignal) => {
                if (!this.#link?.connected) return Promise.reject(new DeviceError('transport', 'offline'));
                return new MqttEscalator(
                  this.#link,
                  { tenant: this.options.tenant, deviceId: this.options.deviceId },
                  this.#now,
                ).infer(req, signal);
              },
            }
          : new OipEscalator(cloud, { ...(this.options.fetch ? { fetch: this.options.fetch } : {}) });
    return new TieredInference({
      tenant: this.options.tenant,
      deviceId: this.options.deviceId,
      runner: this.runner,
      ...(o.cascade ? { cascade: o.cascade } : {}),
      ...(o.escalationThreshold !== undefined ? { escalationThreshold: o.escalationThreshold } : {}),
      ...(o.escalationTimeoutMs !== undefined ? { escalationTimeoutMs: o.escalationTimeoutMs } : {}),
      ...(escalator ? { escalator } : {}),
      ...(o.labels ? { labels: o.labels } : {}),
      now: this.#now,
      log: (record) => this.#queueLog(record),
      ...(o.keepHardSamples
        ? {
            hardSample: (input: Float32Array) =>
              void this.outbox.enqueue(
                'hard-sample',
                null,
                new Uint8Array(input.buffer.slice(input.byteOffset, input.byteOffset + input.byteLength)),
              ),
          }
        : {}),
    });
  }

  #encode<N extends RecordName>(schema: N, value: RecordTypes[N]): Buffer {
    return deviceCodec().encode(schema, value);
  }

  /**
   * Inference logs are encoded and written to the buffer in batches (every 250 ms or 100 records, one transaction)
   * so a prediction never waits for encoding or a disk sync; a crash loses at most the last batch of logs.
   */
  #queueLog(record: InferenceLog): void {
    this.#logs.push(record);
    if (this.#logs.length >= 100) this.#flushLogs();
    else if (!this.#logTimer) {
      this.#logTimer = setTimeout(() => this.#flushLogs(), 250);
      this.#logTimer.unref();
    }
  }

  #flushLogs(): void {
    if (this.#logTimer) clearTimeout(this.#logTimer);
    this.#logTimer = null;
    if (this.#logs.length === 0) return;
    const topic = mqttDeviceTopic(this.options.tenant, this.options.deviceId, 'inference');
    const batch = this.#logs.map((record) => ({
      topic,
      payload: this.#encode('io.edgefl.inference.InferenceLog', record),
    }));
    this.#logs = [];
    this.outbox.enqueueMany('inference-log', batch);
  }

  #otaStatus(status: OtaStatus): void {
    const topic = mqttDeviceTopic(this.options.tenant, this.options.deviceId, 'ota-status');
    this.outbox.enqueue('ota-status', topic, this.#encode('io.edgefl.ota.OtaStatus', status));
    this.options.onOtaStatus?.(status);
    this.#log(
      `ota ${status.state} v${status.toVersion}${status.errorCode ? ` ${status.errorCode}: ${status.errorMessage}` : ''}`,
    );
  }

  #currentWeights(): { spec: ModelSpec; weights: NamedTensor[]; version: number } | null {
    const active = this.store.active;
    const loaded = this.runner.current;
    if (!active || !loaded || loaded.version !== active.version) return null;
    const bytes = this.store.read(active);
    const weights = isArtifact(bytes) ? decodeArtifact(bytes).tensors : readOnnxTensors(bytes);
    return { spec: loaded.spec, weights, version: active.version };
  }

  async #sendUpdate(update: FlUpdate, deadline: number, signal: AbortSignal): Promise<MessageAck> {
    const link = this.#link;
    if (!link) throw new DeviceError('transport', 'no MQTT connection for the update');
    const reply = link.waitReply<MessageAck>(
      [update.updateId, update.eventId],
      Math.max(1, deadline - this.#now()),
      signal,
    );
    this.outbox.enqueue('fl-update', link.topic('fl-update'), this.#encode('io.edgefl.fl.FlUpdate', update), {
      expiresAt: deadline,
    });
    void this.#sync.flush();
    return reply;
  }

  /**
   * Provisioning: the key file (created on first use), a device token (registering the device first with the
   * admin token when the registry does not know it), the pinned release keys and the model id.
   */
  async provision(): Promise<void> {
    try {
      await this.registry.token();
    } catch (error) {
      if (!(error instanceof RegistryHttpError && error.status === 401)) throw error;
      if (!this.options.adminToken)
        throw new DeviceError(
          'not-registered',
          `the registry does not accept device ${this.options.deviceId}'s key: register it (POST /v1/tenants/${this.options.tenant}/devices with publicKey ${this.identity.publicKeyBase64}) or pass an admin token`,
        );
      const res = await fetch(
        `${this.registry.baseUrl}/v1/tenants/${encodeURIComponent(this.options.tenant)}/devices`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${this.options.adminToken}` },
          body: JSON.stringify({
            id: this.options.deviceId,
            publicKey: this.identity.publicKeyBase64,
            ...(this.options.modelId ? { modelId: this.options.modelId } : {}),
            ...(this.options.hardware ? { hardware: this.options.hardware } : {}),
          }),
        },
      );
      if (res.status !== 201)
        throw new DeviceError(
          'not-registered',
          `registering ${this.options.deviceId} failed: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`,
        );
      await res.body?.cancel().catch(() => {});
      await this.registry.token(true);
    }
    if (!this.trust.pinned) {
      this.trust.pin(await this.registry.releaseKeys());
      this.#log(`pinned release keys ${this.trust.keyIds.join(', ')}`);
    }
    if (!this.#modelId) {
      const answer = await this.registry.manifest();
      if (!answer) throw new DeviceError('no-model', 'the registry assigns no model to this device yet');
      this.#modelId = answer.modelId;
    }
    // remembered, so a restart without --model (or offline) runs the same model
    const pinned = join(this.options.dataDir, 'device.json');
    if (!existsSync(pinned)) {
      const record = { tenant: this.options.tenant, deviceId: this.options.deviceId, modelId: this.#modelId };
      replaceAtomically(pinned, Buffer.from(JSON.stringify(record)));
    }
  }

  /** Recovers the model store after a restart and loads the active model (rolling back when it does not load). */
  async loadInstalled(): Promise<void> {
    const recovery = this.store.recover();
    if (recovery.rolledBack)
      this.#rolledBack(recovery.rolledBack.from.version, 'hash-mismatch', recovery.rolledBack.reason);
    for (;;) {
      const active = this.store.active;
      if (!active) return;
      try {
        this.runner.swap(await loadModel(active, this.store.read(active), this.options.session));
        return;
      } catch (error) {
        const prev = this.store.rollback();
        this.#rolledBack(active.version, 'load-failed', (error as Error).message, prev?.version);
        if (!prev) return;
      }
    }
  }

  #rolledBack(badVersion: number, code: string, message: string, to?: number): void {
    this.#otaStatus({
      eventId: randomUUID(),
      tenant: this.options.tenant,
      deviceId: this.options.deviceId,
      modelId: this.#modelId ?? '',
      releaseId: null,
      fromVersion: badVersion,
      toVersion: to ?? this.store.active?.version ?? badVersion,
      state: 'ROLLED_BACK',
      viaDelta: false,
      errorCode: code,
      errorMessage: message,
      bytesDownloaded: 0,
      bytesTotal: null,
      timestamp: this.#now(),
    });
  }

  async #connect(): Promise<void> {
    if (!this.options.mqttUrl) return;
    const token = await this.registry.token();
    let current = token;
    this.#link = await MqttLink.connect(
      {
        url: this.options.mqttUrl,
        tenant: this.options.tenant,
        deviceId: this.options.deviceId,
        password: () => current,
      },
      {
        release: (message, scope) => {
          void this.ota.onReleaseMessage(message, scope);
        },
        round: (event, scope) => this.#onRound(event, scope),
        secagg: (message) => {
          if (message.tenant === this.options.tenant) this.secAgg.deliver(message);
        },
      },
    );
    // keep a fresh token for reconnects (the password is read on each one)
    const refresh = setInterval(() => {
      this.registry.token().then(
        (t) => (current = t),
        () => {},
      );
    }, 60_000);
    refresh.unref();
    this.#timers.push(refresh);
  }

  #onRound(event: RoundEvent, _scope: 'device' | 'broadcast'): void {
    if (event.tenant !== this.options.tenant || event.modelId !== this.#modelId) return;
    const e = event.event;
    if ('io.edgefl.fl.RoundOpened' in e) {
      void this.federated.onRoundOpened(event.roundId, e['io.edgefl.fl.RoundOpened']).then((outcome) => {
        const detail =
          outcome.status === 'failed'
            ? ` (${outcome.reason}: ${outcome.message})`
            : outcome.status === 'declined'
              ? ` (${outcome.reasons.join(', ')})`
              : outcome.status === 'rejected'
                ? ` (${outcome.errorCode ?? ''} ${outcome.errorMessage ?? ''})`
                : '';
        this.#log(`round ${event.roundId}: ${outcome.status}${detail}`);
        this.options.onRound?.(outcome);
      });
    } else if ('io.edgefl.fl.RoundClosed' in e) {
      this.federated.cancel(event.roundId);
    }
  }

  #heartbeat(): void {
    const active = this.store.active;
    const telemetry = heartbeat(
      {
        tenant: this.options.tenant,
        deviceId: this.options.deviceId,
        firmwareVersion: this.options.hardware?.firmware ?? FIRMWARE_DEFAULT,
        group: this.options.group ?? null,
      },
      active ? { modelId: active.modelId, version: active.version } : null,
      this.#probe,
      this.#now(),
      this.features?.drain() ?? null,
    );
    this.outbox.enqueue(
      'telemetry',
      mqttDeviceTopic(this.options.tenant, this.options.deviceId, 'telemetry'),
      this.#encode('io.edgefl.device.DeviceTelemetry', telemetry),
    );
  }

  /**
   * Provisions, recovers, connects and keeps running OTA, heartbeats, sync and federated rounds until stop(). A
   * device provisioned before starts offline when the registry or the broker cannot be reached (it serves its
   * installed model, buffers what it would send, and retries at every poll).
   */
  async start(): Promise<void> {
    try {
      await this.provision();
    } catch (error) {
      if (!(this.trust.pinned && this.#modelId && error instanceof DeviceError && error.code === 'registry'))
        throw error;
      this.#log(`registry unreachable (${error.message}); starting offline on the installed model`);
    }
    await this.loadInstalled();
    const pollMs = this.options.pollIntervalMs ?? 60_000;
    let retryMs = 500;
    let connecting: Promise<void> | null = null;
    // A refused or failed CONNECT (a gateway still starting answers "server unavailable") is retried with backoff,
    // 0.5 s doubling up to the poll interval, not only at the next poll: a device offline for a minute misses rounds.
    const connect = (): Promise<void> =>
      (connecting ??= (async () => {
        if (this.#link || this.#stopping || this.#offline || !this.options.mqttUrl) return;
        try {
          await this.#connect();
          retryMs = 500;
          if (this.#offline) {
            // taken offline while connecting
            const link = this.#link as MqttLink | null;
            this.#link = null;
            await link?.close().catch(() => {});
          }
        } catch (error) {
          this.#log(
            `MQTT: ${(error as Error).message}; running offline, the buffer keeps everything; retrying in ${retryMs} ms`,
          );
          if (this.#retryTimer === null && !this.#stopping) {
            this.#retryTimer = setTimeout(() => {
              this.#retryTimer = null;
              void connect();
            }, retryMs);
            this.#retryTimer.unref();
          }
          retryMs = Math.min(retryMs * 2, pollMs);
        }
      })().finally(() => {
        connecting = null;
      }));
    this.#reconnect = connect;
    await connect();
    this.#sync.start();
    this.#heartbeat();
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.#timers.push(t);
    };
    every(this.options.heartbeatIntervalMs ?? 30_000, () => this.#heartbeat());
    every(pollMs, () => {
      if (this.#offline) return;
      void connect();
      void this.ota.checkForUpdate();
    });
    await this.ota.checkForUpdate();
  }

  /**
   * `--once`: provisions, applies the current release and returns the outcome (ACTIVE, FAILED with the reason, or
   * NONE); OTA statuses are flushed to the gateway when it is reachable, kept in the buffer otherwise.
   */
  async once(): Promise<OtaOutcome> {
    await this.provision();
    await this.loadInstalled();
    try {
      await this.#connect();
    } catch (error) {
      this.#log(`MQTT: ${(error as Error).message}; statuses stay in the buffer`);
    }
    const outcome = await this.ota.checkForUpdate();
    if (this.#link) await this.#sync.flush();
    return outcome;
  }

  /** False while the device is held offline by setOnline(false). */
  get online(): boolean {
    return !this.#offline;
  }

  /**
   * Takes the device off the network and back (airplane mode, a dead zone, a simulator's offline spell). Offline: the
   * MQTT connection is closed and not retried, HTTP polls stop, rounds in progress cancel themselves at their
   * deadline, and everything the device would send stays in its buffer; it still serves its installed model. Online
   * again: it reconnects at once (the retained manifest brings any release it missed) and the buffer drains.
   */
  async setOnline(online: boolean): Promise<void> {
    if (online === !this.#offline || this.#stopping) return;
    this.#offline = !online;
    if (!online) {
      const link = this.#link;
      this.#link = null;
      await link?.close().catch(() => {});
      this.#log('offline');
      return;
    }
    this.#log('online');
    await this.#reconnect?.();
    if (this.#link) void this.#sync.flush();
  }

  /** Runs one input row through tiered inference. */
  predict(input: Float32Array, signal?: AbortSignal): Promise<Prediction> {
    this.#lastInference = this.#now();
    this.features?.observe(input);
    return this.inference.predict(input, signal);
  }

  stats(): { outbox: OutboxStats; mqtt: MqttLink['stats'] | null } {
    return { outbox: this.outbox.stats(), mqtt: this.#link?.stats ?? null };
  }

  /** Stops timers and rounds, flushes what it can (bounded), closes the connection, the sessions and the buffer. */
  async stop(flushTimeoutMs = 5_000): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) clearInterval(t);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#sync.stop();
    this.#flushLogs();
    this.federated.cancelAll();
    if (this.#link?.connected) {
      await Promise.race([this.#sync.flush(), new Promise((r) => setTimeout(r, flushTimeoutMs).unref())]);
    }
    await this.#link?.close().catch(() => {});
    await this.runner.close();
    this.outbox.close();
  }
}
