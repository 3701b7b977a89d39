import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Accelerator, DeviceTelemetry, FeatureSummary, NetworkType } from '@edgefl/contracts/edge';

/** What a heartbeat reports about the machine; each probe can be replaced (simulated devices, tests). */
export interface SystemProbe {
  ram(): { totalBytes: number; freeBytes: number };
  /** CPU busy share over the interval since the last call, 0..100. */
  cpuPercent(): number;
  battery(): { percent: number | null; charging: boolean | null };
  networkType(): NetworkType;
  accelerator(): Accelerator;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return null;
  }
}

/**
 * The host's own figures (Linux first, portable fallbacks): RAM from os, CPU from the os.cpus() tick deltas,
 * battery from /sys/class/power_supply (null on mains power), network type from /sys/class/net (a `wireless`
 * entry means Wi-Fi, an up ARPHRD_ETHER link Ethernet).
 */
export function hostProbe(
  options: { accelerator?: Accelerator; networkType?: NetworkType } = {},
): SystemProbe {
  let last = cpus().map((c) => c.times);
  return {
    ram: () => ({ totalBytes: totalmem(), freeBytes: freemem() }),
    cpuPercent() {
      const now = cpus().map((c) => c.times);
      let busy = 0;
      let total = 0;
      now.forEach((t, i) => {
        const p = last[i] ?? t;
        const idle = t.idle - p.idle;
        const all = t.user - p.user + (t.nice - p.nice) + (t.sys - p.sys) + (t.irq - p.irq) + idle;
        busy += all - idle;
        total += all;
      });
      last = now;
      return total > 0 ? Math.min(100, Math.max(0, (100 * busy) / total)) : 0;
    },
    battery() {
      const root = '/sys/class/power_supply';
      if (!existsSync(root)) return { percent: null, charging: null };
      for (const name of readdirSync(root)) {
        if (readText(join(root, name, 'type')) !== 'Battery') continue;
        const capacity = Number(readText(join(root, name, 'capacity')));
        const status = readText(join(root, name, 'status'));
        return {
          percent: Number.isFinite(capacity) ? capacity : null,
          charging: status === null ? null : status === 'Charging' || status === 'Full',
        };
      }
      return { percent: null, charging: null };
    },
    networkType() {
      if (options.networkType) return options.networkType;
      const root = '/sys/class/net';
      if (!existsSync(root)) return 'UNKNOWN';
      let found: NetworkType = 'UNKNOWN';
      for (const name of readdirSync(root)) {
        if (name === 'lo' || readText(join(root, name, 'operstate')) !== 'up') continue;
        if (existsSync(join(root, name, 'wireless'))) return 'WIFI';
        if (readText(join(root, name, 'type')) === '1') found = 'ETHERNET';
      }
      return found;
    },
    accelerator: () => options.accelerator ?? 'NONE',
  };
}

/**
 * One heartbeat: the active model, the machine's headroom, the device's group (cohort label, null without one) and
 * the feature summaries of the inputs inferred on since the previous heartbeat (null when not configured).
 */
export function heartbeat(
  device: { tenant: string; deviceId: string; firmwareVersion: string; group?: string | null },
  model: { modelId: string; version: number } | null,
  probe: SystemProbe,
  now: number,
  featureSummaries: FeatureSummary[] | null = null,
): DeviceTelemetry {
  const ram = probe.ram();
  const battery = probe.battery();
  return {
    eventId: randomUUID(),
    tenant: device.tenant,
    deviceId: device.deviceId,
    modelId: model?.modelId ?? null,
    modelVersion: model?.version ?? null,
    ramTotalBytes: ram.totalBytes,
    ramFreeBytes: ram.freeBytes,
    cpuPercent: probe.cpuPercent(),
    accelerator: probe.accelerator(),
    batteryPercent: battery.percent,
    networkType: probe.networkType(),
    firmwareVersion: device.firmwareVersion,
    timestamp: now,
    group: device.group ?? null,
    featureSummaries,
  };
}
