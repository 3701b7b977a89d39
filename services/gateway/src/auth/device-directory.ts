import { Injectable } from '@nestjs/common';
import type { DeviceLifecycle } from '@edgefl/contracts';
import type { DeviceIdentity } from '../authz/acl.js';

export type LifecycleRefusal = 'revoked' | 'token_superseded' | 'key_rotated';

interface DeviceState {
  tenant: string;
  revoked: boolean;
  /** Tokens issued before this instant (ms) no longer authenticate. */
  tokensNotBefore: number | null;
  /** The device's current Ed25519 public key (base64url of the raw 32 bytes), when the registry said. */
  publicKey: string | null;
}

/**
 * What the gateway knows of device identities from the registry's lifecycle events (edgefl.device.lifecycle.v1):
 * revoked devices and tokens superseded by a revocation or key rotation. Rebuilt from the compacted topic at boot.
 */
@Injectable()
export class DeviceDirectory {
  private readonly devices = new Map<string, DeviceState>();

  apply(event: DeviceLifecycle): void {
    const current = this.devices.get(event.deviceId);
    const notBefore = Math.max(current?.tokensNotBefore ?? 0, event.tokensNotBefore ?? 0) || null;
    switch (event.event) {
      case 'REVOKED':
        this.devices.set(event.deviceId, {
          tenant: event.tenant,
          revoked: true,
          tokensNotBefore: notBefore,
          publicKey: null,
        });
        return;
      case 'REGISTERED':
        // a (re-)registration is a fresh identity: only what this event says counts
        this.devices.set(event.deviceId, {
          tenant: event.tenant,
          revoked: false,
          tokensNotBefore: event.tokensNotBefore,
          publicKey: event.publicKey,
        });
        return;
      case 'KEY_ROTATED':
      case 'UPDATED':
        this.devices.set(event.deviceId, {
          tenant: event.tenant,
          revoked: current?.revoked ?? false,
          tokensNotBefore: notBefore,
          publicKey: event.publicKey ?? current?.publicKey ?? null,
        });
        return;
      default:
        // UNKNOWN (a kind this gateway does not know yet): keep what we have, lose nothing
        return;
    }
  }

  /** The tenant the registry registered this device to, when a lifecycle event said. */
  tenantOf(deviceId: string): string | null {
    return this.devices.get(deviceId)?.tenant ?? null;
  }

  /**
   * Why this identity may no longer connect, or null. `certificateKey` is the raw Ed25519 key of a client
   * certificate (base64url), compared with the registry's current key after a rotation.
   */
  refusal(identity: DeviceIdentity, certificateKey: string | null = null): LifecycleRefusal | null {
    const state = this.devices.get(identity.deviceId);
    if (!state) return null;
    if (state.revoked) return 'revoked';
    // JWT iat has whole seconds: a token from the second of the change itself still counts (as Keycloak's notBefore)
    if (
      identity.issuedAt !== null &&
      state.tokensNotBefore !== null &&
      identity.issuedAt < Math.floor(state.tokensNotBefore / 1000) * 1000
    )
      return 'token_superseded';
    if (certificateKey !== null && state.publicKey !== null && certificateKey !== state.publicKey)
      return 'key_rotated';
    return null;
  }
}
