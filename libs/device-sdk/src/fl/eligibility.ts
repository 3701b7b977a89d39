import type { NetworkType, RoundOpened } from '@edgefl/contracts/edge';

/** When a device takes part in a round. Every field is optional; an empty policy accepts every invitation. */
export interface EligibilityPolicy {
  /** Minimum battery (percent) unless charging. */
  minBatteryPercent?: number;
  /** Train only while charging. */
  requireCharging?: boolean;
  /** Allowed network types (e.g. ['WIFI', 'ETHERNET']: no training over metered links). */
  networkTypes?: NetworkType[];
  /** Train only when the device is idle (no inference for `idleMs`). */
  requireIdle?: boolean;
  /** Hardware classes allowed to train (empty: any). */
  hardwareClasses?: string[];
  /** Minimum free RAM (bytes) to start training. */
  minFreeRamBytes?: number;
}

export interface DeviceConditions {
  batteryPercent: number | null;
  charging: boolean | null;
  networkType: NetworkType;
  idle: boolean;
  hardwareClass: string | null;
  freeRamBytes: number;
  /** The model version the device runs (the round's base version must match it). */
  modelVersion: number | null;
}

export type IneligibleReason =
  | 'not-selected'
  | 'battery'
  | 'not-charging'
  | 'network'
  | 'busy'
  | 'hardware'
  | 'memory'
  | 'model-version'
  | 'deadline';

/** Decides whether this device answers an invitation; lists every reason it does not. */
export function eligibility(
  policy: EligibilityPolicy,
  conditions: DeviceConditions,
  round: RoundOpened,
  deviceId: string,
  now: number,
): { eligible: boolean; reasons: IneligibleReason[] } {
  const reasons: IneligibleReason[] = [];
  if (!round.selectedDevices.includes(deviceId)) reasons.push('not-selected');
  if (round.deadline <= now) reasons.push('deadline');
  if (conditions.modelVersion !== round.baseVersion) reasons.push('model-version');
  if (policy.requireCharging && conditions.charging !== true) reasons.push('not-charging');
  if (
    policy.minBatteryPercent !== undefined &&
    conditions.batteryPercent !== null &&
    conditions.charging !== true &&
    conditions.batteryPercent < policy.minBatteryPercent
  )
    reasons.push('battery');
  if (policy.networkTypes && !policy.networkTypes.includes(conditions.networkType)) reasons.push('network');
  if (policy.requireIdle && !conditions.idle) reasons.push('busy');
  if (
    policy.hardwareClasses?.length &&
    !(conditions.hardwareClass && policy.hardwareClasses.includes(conditions.hardwareClass))
  )
    reasons.push('hardware');
  if (policy.minFreeRamBytes !== undefined && conditions.freeRamBytes < policy.minFreeRamBytes)
    reasons.push('memory');
  return { eligible: reasons.length === 0, reasons };
}
