import { describe, expect, it } from 'vitest';
import type { DeviceLifecycle } from '@edgefl/contracts';
import type { DeviceIdentity } from '../authz/acl.js';
import { DeviceDirectory } from './device-directory.js';

const event = (kind: DeviceLifecycle['event'], extra: Partial<DeviceLifecycle> = {}): DeviceLifecycle => ({
  eventId: '00000000-0000-4000-8000-000000000000',
  tenant: 'acme',
  deviceId: 'pos-1',
  event: kind,
  publicKey: null,
  keyId: null,
  previousKeyId: null,
  reason: null,
  tokensNotBefore: null,
  timestamp: 0,
  ...extra,
});
const token = (issuedAt: number): DeviceIdentity => ({
  tenant: 'acme',
  deviceId: 'pos-1',
  group: null,
  via: 'token',
  issuedAt,
  expiresAt: null,
});

describe('DeviceDirectory', () => {
  it('refuses a revoked device until it is registered again', () => {
    const dir = new DeviceDirectory();
    expect(dir.refusal(token(5_000))).toBeNull();
    dir.apply(event('REVOKED', { tokensNotBefore: 10_000 }));
    expect(dir.refusal(token(20_000))).toBe('revoked');
    dir.apply(event('UPDATED'));
    expect(dir.refusal(token(20_000))).toBe('revoked');
    dir.apply(event('REGISTERED', { publicKey: 'k2', tokensNotBefore: 30_000 }));
    expect(dir.refusal(token(31_000))).toBeNull();
    expect(dir.refusal(token(29_000))).toBe('token_superseded');
    expect(dir.tenantOf('pos-1')).toBe('acme');
  });

  it('supersedes tokens issued before a rotation (whole seconds, as JWT iat), and old certificate keys', () => {
    const dir = new DeviceDirectory();
    dir.apply(event('KEY_ROTATED', { publicKey: 'new-key', tokensNotBefore: 10_500 }));
    expect(dir.refusal(token(9_000))).toBe('token_superseded');
    expect(dir.refusal(token(10_000))).toBeNull(); // issued within the second of the rotation
    const cert: DeviceIdentity = { ...token(0), via: 'certificate', issuedAt: null };
    expect(dir.refusal(cert, 'old-key')).toBe('key_rotated');
    expect(dir.refusal(cert, 'new-key')).toBeNull();
    // an older event replayed later never moves tokensNotBefore back
    dir.apply(event('UPDATED', { tokensNotBefore: 1_000 }));
    expect(dir.refusal(token(9_000))).toBe('token_superseded');
  });

  it('ignores lifecycle kinds it does not know', () => {
    const dir = new DeviceDirectory();
    dir.apply(event('UNKNOWN'));
    expect(dir.tenantOf('pos-1')).toBeNull();
  });
});
