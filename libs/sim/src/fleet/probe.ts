import type { Accelerator, NetworkType } from '@edgefl/contracts/edge';
import type { SystemProbe } from '@edgefl/device-sdk';

/** The machine a virtual device pretends to be (what its heartbeats and eligibility checks see). */
export interface VirtualHardware {
  readonly class?: string;
  readonly ramBytes?: number;
  /** Share of RAM free, 0..1 (default 0.5). */
  readonly freeRamShare?: number;
  /** Battery percent; null = mains powered (default). */
  readonly batteryPercent?: number | null;
  readonly charging?: boolean | null;
  readonly networkType?: NetworkType;
  readonly accelerator?: Accelerator;
}

/**
 * A SystemProbe answering from the device's declared hardware instead of the host's /proc and /sys: a thousand
 * devices in one process must not report the host's figures, nor read them a thousand times per heartbeat. CPU is a
 * steady figure per device (spread by its index) so heartbeats differ between devices.
 */
export function virtualProbe(hardware: VirtualHardware, index: number): SystemProbe {
  const total = hardware.ramBytes ?? 512 * 1024 * 1024;
  const free = Math.round(total * (hardware.freeRamShare ?? 0.5));
  const cpu = 5 + ((index * 37) % 40);
  return {
    ram: () => ({ totalBytes: total, freeBytes: free }),
    cpuPercent: () => cpu,
    battery: () => ({ percent: hardware.batteryPercent ?? null, charging: hardware.charging ?? null }),
    networkType: () => hardware.networkType ?? 'ETHERNET',
    accelerator: () => hardware.accelerator ?? 'NONE',
  };
}
