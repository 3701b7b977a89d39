import { createHash } from 'node:crypto';
import semver from 'semver';
import type { Device, Release, Targeting } from '../storage/records.js';
import type { DeviceStore } from '../storage/device-store.js';

/**
 * A device's place in a release's rollout, in [0, 100): the first 4 bytes of SHA-256(releaseId ‖ 0x0a ‖ deviceId)
 * scaled. Deterministic (the same device gets the same answer on every replica and after restarts), independent
 * between releases (a device is not always the canary), and stable as stages grow: a device inside the 1% stage
 * stays inside the 10% one. Devices that register late land in the stage their bucket says.
 */
export function rolloutBucket(releaseId: string, deviceId: string): number {
  const digest = createHash('sha256').update(releaseId).update('\n').update(deviceId).digest();
  return (digest.readUInt32BE(0) / 2 ** 32) * 100;
}

export function inStage(bucket: number, percentage: number): boolean {
  return bucket < percentage;
}

/** Why a device is outside a release's targeting, or null when it is eligible. Unknown attributes do not match. */
export function targetingMismatch(device: Device, targeting: Targeting): string | null {
  if (targeting.groups.length > 0 && (device.group === null || !targeting.groups.includes(device.group))) {
    return `group ${device.group ?? '(none)'} is not targeted`;
  }
  if (
    targeting.hardwareClasses.length > 0 &&
    (device.hardwareClass === null || !targeting.hardwareClasses.includes(device.hardwareClass))
  ) {
    return `hardware class ${device.hardwareClass ?? '(unknown)'} is not targeted`;
  }
  if (
    targeting.minRamBytes !== null &&
    (device.ramBytes === null || device.ramBytes < targeting.minRamBytes)
  ) {
    return `RAM ${device.ramBytes ?? '(unknown)'} is below ${targeting.minRamBytes} bytes`;
  }
  if (targeting.firmwareRange !== null) {
    const version = device.firmware === null ? null : semver.coerce(device.firmware);
    if (version === null || !semver.satisfies(version, targeting.firmwareRange)) {
      return `firmware ${device.firmware ?? '(unknown)'} is outside ${targeting.firmwareRange}`;
    }
  }
  return null;
}

/**
 * The lowest rollout bucket among the tenant's live devices assigned to the release's model that its targeting
 * admits (Infinity when there is none): that device is in every stage, so a small fleet's 1% stage is never empty.
 * One keyset-paginated pass over the tenant's devices. The manifest endpoint applies it, and the stage's manifest
 * event carries it (`RolloutStage.floorBucket`) so the gateway offers the manifest to the same device.
 */
export async function stageFloor(
  devices: Pick<DeviceStore, 'listDevices'>,
  release: Pick<Release, 'id' | 'tenantId' | 'modelId' | 'targeting'>,
): Promise<number> {
  let floor = Infinity;
  for (let after = ''; ;) {
    const page = await devices.listDevices(release.tenantId, 1000, after);
    for (const d of page) {
      if (d.modelId !== release.modelId || d.revokedAt !== null) continue;
      if (targetingMismatch(d, release.targeting) !== null) continue;
      floor = Math.min(floor, rolloutBucket(release.id, d.id));
    }
    if (page.length < 1000) return floor;
    after = page[page.length - 1]!.id;
  }
}
