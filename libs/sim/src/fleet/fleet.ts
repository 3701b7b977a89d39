import { mkdirSync, readdirSync, readlinkSync as readLink, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { OtaStatus } from '@edgefl/contracts/edge';
import {
  EdgeDevice,
  SecAggParticipant,
  targetsFromLabels,
  type Dataset,
  type EdgeDeviceOptions,
  type FederatedOptions,
  type Prediction,
  type RoundOutcome,
  type SystemProbe,
} from '@edgefl/device-sdk';
import type { ModelSpec } from '@edgefl/model';
import { flipLabels } from '../attacks/attacks.js';
import { attackTransform, Collusion, type AttackSpec } from '../attacks/collusion.js';
import type { Table } from '../data/types.js';
import { stream } from '../random.js';
import { virtualProbe, type VirtualHardware } from './probe.js';
import { NetworkShaper, offlineSpells, slowTraining, type NetworkProfile } from './profiles.js';

/** One virtual device of a fleet: its id, its private training partition, and the machine it pretends to be. */
export interface FleetDeviceSpec {
  readonly id: string;
  /** The device's private training rows (its partition of the training split; never leaves the device). */
  readonly train: Table;
  /** The machine (a DEVICE_CLASSES entry or any VirtualHardware); `cpuSpeed` < 1 makes its training slower. */
  readonly hardware?: VirtualHardware & { readonly cpuSpeed?: number };
  /** The network it sits on (NETWORK_PROFILES): latency, loss and bandwidth on its MQTT and HTTP traffic, offline spells. */
  readonly network?: NetworkProfile;
  /** An attacking device: it trains and speaks the protocol like any other, but sends the attack's update. */
  readonly attack?: AttackSpec;
  /** Device group / cohort label its heartbeats carry (DeviceTelemetry.group); none by default. */
  readonly group?: string;
}

export interface FleetOptions {
  readonly registryUrl: string;
  readonly mqttUrl: string;
  readonly tenant: string;
  readonly modelId: string;
  /** The registry's management token: each device registers itself with it on first start (as `device run` does). */
  readonly adminToken: string;
  /** Root of the devices' data directories (each device: `<dataDir>/<id>` with its key, buffer and models). */
  readonly dataDir: string;
  readonly devices: readonly FleetDeviceSpec[];
  /**
   * How many devices provision and connect at once (default 16). Each start is a key, a token exchange, the release
   * keys, an MQTT CONNECT (the gateway verifies the JWT) and the first manifest: pacing them keeps the services'
   * event loops — in the same process in the demo — answering everybody within the timeouts.
   */
  readonly startConcurrency?: number;
  readonly federated?: Omit<FederatedOptions, 'policy'>;
  readonly inference?: EdgeDeviceOptions['inference'];
  readonly heartbeatIntervalMs?: number;
  readonly pollIntervalMs?: number;
  readonly syncIntervalMs?: number;
  readonly onOtaStatus?: (deviceId: string, status: OtaStatus) => void;
  readonly onRound?: (deviceId: string, outcome: RoundOutcome) => void;
  readonly onStarted?: (started: number, total: number) => void;
  readonly log?: (deviceId: string, line: string) => void;
  /**
   * Take part in secure-aggregation rounds (privacyMode `secure-aggregation`): every device gets the SDK's
   * SecAggParticipant, checking its peers' protocol signatures against the fleet's devices' registered keys (the
   * PKI the protocol assumes; the fleet registered them), on its own `secagg` MQTT channel.
   */
  readonly secureAggregation?: boolean;
  /** Seed of the simulated randomness (network draws, offline spells, attack noise); default 1. */
  readonly seed?: number;
  /** How far ahead offline spells are scheduled from the start (default 1 hour). */
  readonly offlineHorizonMs?: number;
}

/** What the fleet costs this process, measured (not estimated) after the devices started. */
export interface FleetCost {
  readonly devices: number;
  readonly connected: number;
  /** Resident set size, V8 heap and native (ONNX Runtime, SQLite) memory, of the whole process. */
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  /** Open file descriptors of the process (/proc/self/fd; null where there is none) and how many are sockets. */
  readonly fileDescriptors: number | null;
  readonly sockets: number | null;
}

/** Predictions a fleet served on held-out rows. */
export interface ServeResult {
  readonly predictions: number;
  readonly correct: number;
  readonly bySource: Readonly<Record<Prediction['source'], number>>;
  /** Latency of each prediction in ms, by where it was answered (edge = on the device; cloud = escalated). */
  readonly edgeLatencyMs: readonly number[];
  readonly cloudLatencyMs: readonly number[];
  readonly errors: number;
}

/** A device of the fleet: the real SDK device, and the data it was given. */
export class VirtualDevice {
  readonly id: string;
  readonly device: EdgeDevice;
  readonly trainRows: number;
  readonly attack: AttackSpec | null;
  /** The device's network shaper (null on an unshaped network). */
  readonly network: NetworkShaper | null;
  #dataset: Dataset | null = null;

  constructor(
    spec: FleetDeviceSpec,
    options: FleetOptions,
    probe: SystemProbe,
    collusion: Collusion | null = null,
    peerKeys: ((deviceId: string) => Uint8Array | null) | null = null,
  ) {
    this.id = spec.id;
    this.trainRows = spec.train.rows;
    this.attack = spec.attack ?? null;
    const dir = join(options.dataDir, spec.id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const seed = options.seed ?? 1;
    this.network = spec.network ? new NetworkShaper(spec.network, stream(seed, `network:${spec.id}`)) : null;
    const attack = spec.attack;
    const train = spec.train;
    // label flip is data poisoning: the attacker trains on its rows with flipped labels
    const trainOn = (modelSpec: ModelSpec): Table =>
      attack?.kind === 'label-flip'
        ? flipLabels(train, modelSpec.outputs === 1 ? 2 : modelSpec.outputs)
        : train;
    let transform = attack ? attackTransform(attack, collusion, seed) : undefined;
    const cpuSpeed = spec.hardware?.cpuSpeed ?? 1;
    if (cpuSpeed !== 1) transform = slowTraining(cpuSpeed, transform);
    const federated =
      options.federated || transform || peerKeys
        ? {
            ...options.federated,
            ...(transform ? { updateTransform: transform } : {}),
            ...(peerKeys ? { secureAggregation: new SecAggParticipant({ peerKeys }) } : {}),
          }
        : undefined;
    this.device = new EdgeDevice({
      registryUrl: options.registryUrl,
      mqttUrl: options.mqttUrl,
      tenant: options.tenant,
      deviceId: spec.id,
      modelId: options.modelId,
      keyFile: join(dir, 'device.pem'),
      dataDir: dir,
      adminToken: options.adminToken,
      ...(spec.group !== undefined ? { group: spec.group } : {}),
      hardware: {
        class: spec.hardware?.class ?? 'sim',
        ramBytes: spec.hardware?.ramBytes ?? 512 * 1024 * 1024,
        firmware: 'edgefl-sim/0.1.0',
      },
      // the trainer wants targets for the model's head: built once, on the first round, from the partition
      data: (modelSpec: ModelSpec) => (this.#dataset ??= datasetOf(modelSpec, trainOn(modelSpec))),
      probe,
      session: { intraOpThreads: 1, warmupRuns: 1 },
      sync: { strategy: 'event-driven', intervalMs: options.syncIntervalMs ?? 1_000 },
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 30_000,
      pollIntervalMs: options.pollIntervalMs ?? 30_000,
      ...(federated ? { federated } : {}),
      ...(this.network ? { fetch: this.network.fetch(), beforePublish: this.network.beforePublish } : {}),
      ...(options.inference ? { inference: options.inference } : {}),
      ...(options.onOtaStatus ? { onOtaStatus: (s: OtaStatus) => options.onOtaStatus!(spec.id, s) } : {}),
      ...(options.onRound ? { onRound: (o: RoundOutcome) => options.onRound!(spec.id, o) } : {}),
      ...(options.log ? { log: (line: string) => options.log!(spec.id, line) } : {}),
    });
  }

  /** The version the device runs (null before its first install). */
  get version(): number | null {
    return this.device.store.active?.version ?? null;
  }
}

/** A partition as the SDK trainer's data set: features as they are, targets for the model's head. */
export function datasetOf(spec: ModelSpec, table: Table): Dataset {
  if (table.cols !== spec.inputs)
    throw new RangeError(`the partition has ${table.cols} features; the model takes ${spec.inputs}`);
  return {
    features: table.cols,
    rows: table.rows,
    x: table.features,
    y: targetsFromLabels(spec, table.labels),
  };
}

/**
 * Runs `fn` over `items` with at most `limit` running at once; after a failure no new item starts, the running ones
 * finish, and the first error is thrown.
 */
async function pooled<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length && failure === null) {
      try {
        await fn(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  });
  await Promise.all(workers);
  if (failure !== null) throw (failure as { error: unknown }).error;
}

/**
 * A fleet of virtual devices in one process, each a real `EdgeDevice` of the SDK: its own key, its own MQTT
 * connection to the gateway (JWT from the registry), HTTP downloads from the registry, its SQLite buffer and model
 * store in its own directory. The fleet adds no shortcut around the transport: rounds, releases and escalations reach
 * the devices the way they reach real ones.
 */
export class Fleet {
  /** The devices, in the order given (filled as they start). */
  readonly devices: VirtualDevice[] = [];
  readonly options: FleetOptions;
  /** The colluding attackers' channel (ALIE, IPM), shared by every attacking device. */
  readonly collusion: Collusion;
  #started = false;
  #spellTimers: NodeJS.Timeout[] = [];
  /** The devices' Ed25519 public keys, as registered: the secure-aggregation PKI. */
  readonly #keys = new Map<string, Uint8Array>();
  #offlineSpells = 0;

  private constructor(options: FleetOptions) {
    this.options = options;
    const ids = new Set<string>();
    for (const spec of options.devices) {
      if (ids.has(spec.id)) throw new RangeError(`device id ${spec.id} appears twice in the fleet`);
      ids.add(spec.id);
    }
    this.collusion = new Collusion(options.devices.filter((d) => d.attack).map((d) => d.id));
  }

  /**
   * Creates and starts the devices, `startConcurrency` at a time (a device is created just before it starts: its key,
   * directory and SQLite buffer are synchronous work, which done for a thousand devices at once would block this
   * process for seconds); rejects with the first device that fails, after stopping the others.
   */
  static async start(options: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(options);
    const slots: Array<VirtualDevice | undefined> = new Array(options.devices.length);
    try {
      let started = 0;
      const indices = options.devices.map((_, i) => i);
      await pooled(indices, options.startConcurrency ?? 16, async (i) => {
        const spec = options.devices[i]!;
        const device = new VirtualDevice(
          spec,
          options,
          virtualProbe(spec.hardware ?? {}, i),
          fleet.collusion,
          options.secureAggregation ? (id) => fleet.#keys.get(id) ?? null : null,
        );
        fleet.#keys.set(spec.id, device.device.identity.key.publicKey);
        slots[i] = device;
        try {
          await device.device.start();
        } catch (error) {
          throw new Error(`device ${spec.id} did not start: ${(error as Error).message}`, { cause: error });
        }
        options.onStarted?.(++started, options.devices.length);
      });
      fleet.devices.push(...(slots as VirtualDevice[]));
      fleet.#started = true;
      fleet.#scheduleOfflineSpells();
    } catch (error) {
      fleet.devices.push(...slots.filter((d): d is VirtualDevice => d !== undefined));
      await fleet.stop();
      throw error;
    }
    return fleet;
  }

  /**
   * Schedules every device's offline spells (its profile's, drawn from the seed), from now: at a spell's start the
   * device goes offline (SDK setOnline(false): MQTT closed, HTTP refused, everything buffered), at its end back.
   */
  #scheduleOfflineSpells(): void {
    const seed = this.options.seed ?? 1;
    const horizon = this.options.offlineHorizonMs ?? 3_600_000;
    for (const d of this.devices) {
      const profile = this.options.devices.find((s) => s.id === d.id)?.network;
      if (!profile?.offline || !d.network) continue;
      const shaper = d.network;
      for (const [start, end] of offlineSpells(profile, stream(seed, `offline:${d.id}`), horizon)) {
        const off = setTimeout(() => {
          shaper.offline = true;
          this.#offlineSpells++;
          void d.device.setOnline(false);
        }, start);
        const on = setTimeout(() => {
          shaper.offline = false;
          void d.device.setOnline(true);
        }, end);
        off.unref();
        on.unref();
        this.#spellTimers.push(off, on);
      }
    }
  }

  /** Offline spells begun so far. */
  get offlineSpellsBegun(): number {
    return this.#offlineSpells;
  }

  /** Ids of the attacking devices. */
  attackers(): string[] {
    return this.devices.filter((d) => d.attack).map((d) => d.id);
  }

  get started(): boolean {
    return this.#started;
  }

  /** Model version → number of devices running it (`none` before a first install). */
  versionMix(): Record<string, number> {
    const mix: Record<string, number> = {};
    for (const d of this.devices) {
      const key = d.version === null ? 'none' : `v${d.version}`;
      mix[key] = (mix[key] ?? 0) + 1;
    }
    return mix;
  }

  /** Devices whose MQTT connection is up. */
  connected(): number {
    return this.devices.filter((d) => d.device.connected).length;
  }

  /**
   * Every device answers `rowsPerDevice` held-out rows (the test split no device trained on, dealt round robin)
   * through the SDK's tiered inference: local ONNX, escalated to the cloud tier below the confidence threshold.
   * `concurrency` devices predict at once.
   */
  async serve(test: Table, rowsPerDevice: number, concurrency = 32): Promise<ServeResult> {
    const bySource: Record<Prediction['source'], number> = { edge: 0, cloud: 0, edge_fallback: 0 };
    const edge: number[] = [];
    const cloud: number[] = [];
    let predictions = 0;
    let correct = 0;
    let errors = 0;
    let cursor = 0;
    await pooled(this.devices, concurrency, async (d) => {
      if (d.version === null) return;
      for (let k = 0; k < rowsPerDevice && test.rows > 0; k++) {
        const row = cursor++ % test.rows;
        const input = test.features.subarray(row * test.cols, (row + 1) * test.cols);
        try {
          const p = await d.device.predict(input);
          predictions++;
          bySource[p.source]++;
          (p.source === 'cloud' ? cloud : edge).push(p.latencyMs);
          if (Number(p.label) === test.labels[row]) correct++;
        } catch {
          errors++;
        }
      }
    });
    return { predictions, correct, bySource, edgeLatencyMs: edge, cloudLatencyMs: cloud, errors };
  }

  /** Measures what the fleet costs this process now (see FleetCost). */
  cost(): FleetCost {
    const memory = process.memoryUsage();
    let fileDescriptors: number | null = null;
    let sockets: number | null = null;
    try {
      const fds = readdirSync('/proc/self/fd');
      fileDescriptors = fds.length;
      sockets = 0;
      for (const fd of fds) {
        try {
          if (readLink(`/proc/self/fd/${fd}`).startsWith('socket:')) sockets++;
        } catch {
          // closed between the listing and the read
        }
      }
    } catch {
      // no /proc (not Linux)
    }
    return {
      devices: this.devices.length,
      connected: this.connected(),
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
      fileDescriptors,
      sockets,
    };
  }

  /** Stops every device (bounded flush of what it buffered), then removes their directories when asked. */
  async stop(options: { removeData?: boolean; flushTimeoutMs?: number } = {}): Promise<void> {
    for (const t of this.#spellTimers) clearTimeout(t);
    this.#spellTimers = [];
    await pooled(this.devices, 64, (d) => d.device.stop(options.flushTimeoutMs ?? 2_000).catch(() => {}));
    if (options.removeData) rmSync(this.options.dataDir, { recursive: true, force: true });
  }
}
