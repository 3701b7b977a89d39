import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ReleaseManifest } from '@edgefl/contracts';
import type { DeviceIdentity } from '../authz/acl.js';
import { isForDevice, isForWholeTenant, rolloutBucket } from './releases.service.js';

const manifest = (percentage: number, groups: string[] = [], floorBucket: number | null = null) =>
  ({
    releaseId: 'rel-1',
    tenant: 'acme',
    rollout: { stage: 's', percentage, floorBucket },
    targeting: { groups },
  }) as unknown as ReleaseManifest;
const device = (deviceId: string, group: string | null = null, tenant = 'acme'): DeviceIdentity => ({
  tenant,
  deviceId,
  group,
  via: 'token',
  issuedAt: 0,
  expiresAt: null,
});

describe('release targeting', () => {
  it('computes the registry bucket: first 4 bytes of sha256(releaseId \\n deviceId), scaled to [0, 100)', () => {
    const digest = createHash('sha256').update('rel-1\npos-1').digest();
    expect(rolloutBucket('rel-1', 'pos-1')).toBeCloseTo((digest.readUInt32BE(0) / 2 ** 32) * 100, 12);
    const buckets = Array.from({ length: 2_000 }, (_, i) => rolloutBucket('rel-1', `d-${i}`));
    expect(buckets.every((b) => b >= 0 && b < 100)).toBe(true);
    const share = buckets.filter((b) => b < 10).length / buckets.length;
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.13);
  });

  it('sends a full untargeted release to the broadcast topic, the rest to the devices it is for', () => {
    expect(isForWholeTenant(manifest(100))).toBe(true);
    expect(isForWholeTenant(manifest(100, ['eu']))).toBe(false);
    expect(isForWholeTenant(manifest(10))).toBe(false);
    expect(isForDevice(manifest(100, ['eu']), device('a', 'eu'))).toBe(true);
    expect(isForDevice(manifest(100, ['eu']), device('a', 'us'))).toBe(false);
    expect(isForDevice(manifest(100, ['eu']), device('a', null))).toBe(false);
    expect(isForDevice(manifest(100), device('a', null, 'globex'))).toBe(false);
    const ids = Array.from({ length: 200 }, (_, i) => `d-${i}`);
    const inStage = ids.filter((id) => isForDevice(manifest(25), device(id)));
    expect(inStage).toEqual(ids.filter((id) => rolloutBucket('rel-1', id) < 25));
  });

  it("offers a stage's manifest to the registry's floor device too, and only to it", () => {
    const ids = Array.from({ length: 50 }, (_, i) => `d-${i}`);
    const buckets = ids.map((id) => rolloutBucket('rel-1', id));
    const floor = Math.min(...buckets);
    expect(floor).toBeGreaterThan(0.01); // 50 devices: the 0.01% stage holds none of them by bucket alone
    const lowest = ids[buckets.indexOf(floor)]!;
    expect(ids.filter((id) => isForDevice(manifest(0.01), device(id)))).toEqual([]);
    expect(ids.filter((id) => isForDevice(manifest(0.01, [], floor), device(id)))).toEqual([lowest]);
  });
});
