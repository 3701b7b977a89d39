import type { NetworkType } from '@edgefl/contracts/edge';
import { DeviceError, type Fetch, type UpdateTransform } from '@edgefl/device-sdk';
import type { SimRandom } from '../random.js';
import type { VirtualHardware } from './probe.js';

/**
 * A class of device: what its heartbeats report (RAM, battery, network type) and how fast it trains (`cpuSpeed`
 * relative to this host: 0.25 takes four times as long).
 */
export interface DeviceClass extends VirtualHardware {
  readonly class: string;
  readonly cpuSpeed: number;
}

export const DEVICE_CLASSES = {
  /** A payment terminal on mains power and Ethernet. */
  'pos-terminal': {
    class: 'pos-terminal',
    ramBytes: 512 * 2 ** 20,
    cpuSpeed: 0.5,
    batteryPercent: null,
    networkType: 'ETHERNET',
  },
  /** A phone: fast, on battery, on Wi-Fi or 4G. */
  phone: {
    class: 'phone',
    ramBytes: 4 * 2 ** 30,
    cpuSpeed: 1,
    batteryPercent: 70,
    charging: false,
    networkType: 'WIFI',
  },
  /** A battery sensor on a low-power cellular link: little RAM, a slow core. */
  sensor: {
    class: 'sensor',
    ramBytes: 128 * 2 ** 20,
    cpuSpeed: 0.2,
    batteryPercent: 45,
    charging: false,
    networkType: 'CELLULAR_3G',
  },
  /** An edge gateway box: as fast as the host, mains powered. */
  'edge-box': {
    class: 'edge-box',
    ramBytes: 2 * 2 ** 30,
    cpuSpeed: 1,
    batteryPercent: null,
    networkType: 'ETHERNET',
  },
} as const satisfies Record<string, DeviceClass & { readonly networkType: NetworkType }>;
export type DeviceClassName = keyof typeof DEVICE_CLASSES;

/**
 * A network profile: one-way latency (+ uniform jitter) before every message and request, transfer time at the
 * bandwidth, a loss rate (a lost MQTT publish stays in the device's buffer and goes again; a lost HTTP request fails
 * as a network error, which the SDK retries), and offline spells (alternating exponential online/offline periods;
 * offline, the device's MQTT connection is closed and HTTP fails).
 */
export interface NetworkProfile {
  readonly name: string;
  readonly latencyMs: number;
  readonly jitterMs: number;
  readonly lossRate: number;
  readonly bandwidthBytesPerSecond: number;
  readonly offline: { readonly meanOnlineMs: number; readonly meanOfflineMs: number } | null;
}

export const NETWORK_PROFILES = {
  lan: {
    name: 'lan',
    latencyMs: 0.5,
    jitterMs: 0.5,
    lossRate: 0,
    bandwidthBytesPerSecond: 100e6,
    offline: null,
  },
  wifi: {
    name: 'wifi',
    latencyMs: 5,
    jitterMs: 5,
    lossRate: 0.001,
    bandwidthBytesPerSecond: 5e6,
    offline: null,
  },
  '4g': {
    name: '4g',
    latencyMs: 40,
    jitterMs: 20,
    lossRate: 0.01,
    bandwidthBytesPerSecond: 1.5e6,
    offline: null,
  },
  '3g': {
    name: '3g',
    latencyMs: 120,
    jitterMs: 60,
    lossRate: 0.03,
    bandwidthBytesPerSecond: 200e3,
    offline: null,
  },
  /** A rural link that drops out: about a minute online, then 10 s offline. */
  flaky: {
    name: 'flaky',
    latencyMs: 80,
    jitterMs: 80,
    lossRate: 0.05,
    bandwidthBytesPerSecond: 500e3,
    offline: { meanOnlineMs: 60_000, meanOfflineMs: 10_000 },
  },
} as const satisfies Record<string, NetworkProfile>;
export type NetworkProfileName = keyof typeof NETWORK_PROFILES;

/** Checks a profile's numbers (a bad one is a RangeError naming the field). */
export function checkNetworkProfile(p: NetworkProfile): NetworkProfile {
  const bad = (field: string, v: number) =>
    new RangeError(`network profile ${p.name}: ${field} ${v} is out of range`);
  if (!(p.latencyMs >= 0 && Number.isFinite(p.latencyMs))) throw bad('latencyMs', p.latencyMs);
  if (!(p.jitterMs >= 0 && Number.isFinite(p.jitterMs))) throw bad('jitterMs', p.jitterMs);
  if (!(p.lossRate >= 0 && p.lossRate < 1)) throw bad('lossRate', p.lossRate);
  if (!(p.bandwidthBytesPerSecond > 0)) throw bad('bandwidthBytesPerSecond', p.bandwidthBytesPerSecond);
  if (p.offline && !(p.offline.meanOnlineMs > 0 && p.offline.meanOfflineMs > 0))
    throw bad('offline mean', Math.min(p.offline.meanOnlineMs, p.offline.meanOfflineMs));
  return p;
}

/** Waits ms, or rejects when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What a shaper has done, for reports and tests. */
export interface NetworkStats {
  messages: number;
  lostMessages: number;
  requests: number;
  lostRequests: number;
  offlineRefusals: number;
  delayedMs: number;
}

/**
 * Applies a network profile to one device: `beforePublish` (the SDK's hook before every buffered MQTT publish) and
 * `fetch` (wraps the HTTP client the SDK is given) wait the latency and transfer time and drop with the loss rate,
 * both drawn from the device's seeded stream. `offline` is set by the fleet's offline spells.
 */
export class NetworkShaper {
  readonly profile: NetworkProfile;
  readonly stats: NetworkStats = {
    messages: 0,
    lostMessages: 0,
    requests: 0,
    lostRequests: 0,
    offlineRefusals: 0,
    delayedMs: 0,
  };
  offline = false;
  readonly #random: SimRandom;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    profile: NetworkProfile,
    random: SimRandom,
    wait: (ms: number, signal?: AbortSignal) => Promise<void> = sleep,
  ) {
    this.profile = checkNetworkProfile(profile);
    this.#random = random;
    this.#sleep = wait;
  }

  /** One-way latency plus the transfer time of `bytes`. */
  delayMs(bytes: number): number {
    const p = this.profile;
    return p.latencyMs + this.#random.next() * p.jitterMs + (bytes / p.bandwidthBytesPerSecond) * 1000;
  }

  async #wait(ms: number, signal?: AbortSignal): Promise<void> {
    this.stats.delayedMs += ms;
    if (ms >= 1) await this.#sleep(ms, signal);
  }

  /** For EdgeDeviceOptions.beforePublish. */
  readonly beforePublish = async (_topic: string, bytes: number): Promise<void> => {
    this.stats.messages++;
    if (this.offline) {
      this.stats.offlineRefusals++;
      throw new DeviceError('transport', 'offline (simulated network)');
    }
    await this.#wait(this.delayMs(bytes));
    if (this.#random.bernoulli(this.profile.lossRate)) {
      this.stats.lostMessages++;
      throw new DeviceError('transport', `message lost (simulated ${this.profile.name} network)`);
    }
  };

  /** Wraps an HTTP client: latency before the request, loss, transfer time of the response body's declared length. */
  fetch(inner: Fetch = fetch): Fetch {
    return (async (input: Parameters<Fetch>[0], init?: Parameters<Fetch>[1]) => {
      this.stats.requests++;
      const signal = init?.signal ?? undefined;
      if (this.offline) {
        this.stats.offlineRefusals++;
        throw new TypeError('fetch failed: offline (simulated network)');
      }
      const body = init?.body;
      const sent =
        typeof body === 'string' ? Buffer.byteLength(body) : body instanceof Uint8Array ? body.byteLength : 0;
      await this.#wait(this.delayMs(sent), signal);
      if (this.#random.bernoulli(this.profile.lossRate)) {
        this.stats.lostRequests++;
        throw new TypeError(`fetch failed: request lost (simulated ${this.profile.name} network)`);
      }
      const res = await inner(input, init);
      const length = Number(res.headers.get('content-length') ?? 0);
      if (length > 0) await this.#wait((length / this.profile.bandwidthBytesPerSecond) * 1000, signal);
      return res;
    }) as Fetch;
  }
}

/**
 * Offline spells of a profile over `horizonMs` from 0: [start, end) intervals, online and offline periods drawn
 * alternately from exponentials with the profile's means (the device starts online). Empty without `offline`.
 */
export function offlineSpells(
  profile: NetworkProfile,
  random: SimRandom,
  horizonMs: number,
): Array<[number, number]> {
  const spells: Array<[number, number]> = [];
  if (!profile.offline) return spells;
  let t = 0;
  for (;;) {
    t += random.exponential(profile.offline.meanOnlineMs);
    if (t >= horizonMs) return spells;
    const end = t + random.exponential(profile.offline.meanOfflineMs);
    spells.push([t, Math.min(end, horizonMs)]);
    t = end;
  }
}

/**
 * The SDK UpdateTransform that makes training take as long as it would on a core `cpuSpeed` times this host's:
 * after the real training it waits trainingMs × (1/cpuSpeed − 1), stopping with the round. Composes with another
 * transform (an attack), which runs first.
 */
export function slowTraining(cpuSpeed: number, then?: UpdateTransform): UpdateTransform {
  if (!(cpuSpeed > 0 && cpuSpeed <= 1e3))
    throw new RangeError(`cpuSpeed must be in (0, 1000], got ${cpuSpeed}`);
  return async (update, ctx) => {
    const out = then ? await then(update, ctx) : update;
    const extra = ctx.trainingMs * (1 / cpuSpeed - 1);
    if (extra >= 1) await sleep(extra, ctx.signal).catch(() => undefined);
    return out;
  };
}
