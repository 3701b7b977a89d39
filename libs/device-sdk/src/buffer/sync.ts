import type { NetworkType } from '@edgefl/contracts/edge';
import type { Outbox, RecordKind } from './outbox.js';

/**
 * When buffered records go out:
 * - periodic: every `intervalMs`;
 * - event-driven: shortly after each new record (debounced by `debounceMs`);
 * - opportunistic: like periodic, but telemetry and logs only on Wi-Fi/Ethernet with battery ≥ `minBatteryPercent`
 *   or charging;
 * - adaptive: the interval shrinks while a backlog builds and grows (up to 16×) on metered networks, low battery
 *   and after failures.
 * Under every strategy OTA statuses and FL updates are sent as soon as the device is connected.
 */
export type SyncStrategy = 'periodic' | 'event-driven' | 'opportunistic' | 'adaptive';

export interface SyncConditions {
  connected: boolean;
  networkType: NetworkType;
  batteryPercent: number | null;
  charging: boolean | null;
}

export interface SyncOptions {
  strategy: SyncStrategy;
  intervalMs?: number;
  debounceMs?: number;
  /** Largest batch in bytes (default 64 KiB) and records (default 200). */
  maxBatchBytes?: number;
  maxBatchRecords?: number;
  minBatteryPercent?: number;
  conditions: () => SyncConditions;
  /** Publishes one record with QoS 1; resolves on the broker's PUBACK. */
  publish: (topic: string, payload: Uint8Array) => Promise<void>;
}

const URGENT: readonly RecordKind[] = ['ota-status', 'fl-update'];
const ALL: readonly RecordKind[] = ['ota-status', 'fl-update', 'telemetry', 'inference-log'];

/** Drains the outbox per its strategy; a record leaves the outbox only after its PUBACK. */
export class SyncScheduler {
  readonly #outbox: Outbox;
  readonly #o: Required<Omit<SyncOptions, 'conditions' | 'publish'>> &
    Pick<SyncOptions, 'conditions' | 'publish'>;
  #timer: NodeJS.Timeout | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  #failures = 0;
  #stopped = true;

  constructor(outbox: Outbox, options: SyncOptions) {
    this.#outbox = outbox;
    this.#o = {
      intervalMs: 10_000,
      debounceMs: 200,
      maxBatchBytes: 64 << 10,
      maxBatchRecords: 200,
      minBatteryPercent: 30,
      ...options,
    };
    outbox.onEnqueue((kind) => {
      if (this.#stopped) return;
      if (this.#o.strategy === 'event-driven' || URGENT.includes(kind)) this.#soon();
    });
  }

  start(): void {
    this.#stopped = false;
    this.#schedule();
    this.#soon();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#timer = this.#debounce = null;
  }

  /** The kinds this strategy sends now. */
  kindsNow(): readonly RecordKind[] {
    const c = this.#o.conditions();
    if (!c.connected) return [];
    if (this.#o.strategy !== 'opportunistic') return ALL;
    const unmetered = c.networkType === 'WIFI' || c.networkType === 'ETHERNET';
    const power =
      c.charging === true || c.batteryPercent === null || c.batteryPercent >= this.#o.minBatteryPercent;
    return unmetered && power ? ALL : URGENT;
  }

  /** The wait before the next periodic pass. */
  nextIntervalMs(): number {
    const base = this.#o.intervalMs;
    if (this.#o.strategy !== 'adaptive') return base;
    const c = this.#o.conditions();
    const stats = this.#outbox.stats();
    const backlog = stats.pending.telemetry + stats.pending['inference-log'];
    let factor = 1;
    if (backlog > 1000) factor /= 4;
    else if (backlog > 100) factor /= 2;
    if (c.networkType.startsWith('CELLULAR') || c.networkType === 'LPWAN' || c.networkType === 'SATELLITE')
      factor *= 2;
    if (c.batteryPercent !== null && c.batteryPercent < this.#o.minBatteryPercent && c.charging !== true)
      factor *= 2;
    factor *= 2 ** Math.min(this.#failures, 3);
    return Math.max(100, Math.min(base * 16, Math.round(base * factor)));
  }

  #schedule(): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.flush().finally(() => this.#schedule());
    }, this.nextIntervalMs());
    this.#timer.unref();
  }

  #soon(): void {
    if (this.#debounce || this.#stopped) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      void this.flush();
    }, this.#o.debounceMs);
    this.#debounce.unref();
  }

  /** One pass: sends batches until the outbox has nothing this strategy sends now. Returns the records sent. */
  flush(kinds?: readonly RecordKind[]): Promise<number> {
    if (this.#running) return this.#running;
    const run = (async () => {
      let sent = 0;
      try {
        for (;;) {
          const allowed = kinds ?? this.kindsNow();
          if (allowed.length === 0) break;
          const batch = this.#outbox.nextBatch(this.#o.maxBatchBytes, this.#o.maxBatchRecords, allowed);
          if (batch.length === 0) break;
          const results = await Promise.allSettled(batch.map((r) => this.#o.publish(r.topic!, r.payload)));
          const acked = batch.filter((_, i) => results[i]!.status === 'fulfilled');
          this.#outbox.markSent(acked);
          sent += acked.length;
          if (acked.length < batch.length) {
            this.#failures++;
            break;
          }
          this.#failures = 0;
        }
      } catch {
        this.#failures++;
      }
      return sent;
    })();
    this.#running = run;
    void run.finally(() => {
      if (this.#running === run) this.#running = null;
    });
    return run;
  }
}
