import { Injectable } from '@nestjs/common';
import type { DeviceIdentity } from '../authz/acl.js';
import { DeviceDirectory } from './device-directory.js';

/** Why the gateway closed a connection itself (counted; the presence event says it too). */
export type CloseReason =
  | 'token_expired'
  | 'revoked'
  | 'token_superseded'
  | 'key_rotated'
  | 'abuse'
  | 'bus_unavailable'
  | 'gateway_shutdown';

export interface LiveSession {
  identity: DeviceIdentity;
  /** Raw Ed25519 key of the client certificate (base64url), when the device authenticated by certificate. */
  certificateKey: string | null;
  close(reason: CloseReason): void;
}

type ConnectListener = (identity: DeviceIdentity) => void | Promise<void>;

/**
 * The devices connected to this gateway replica. Re-checked on every lifecycle event (revocations take effect
 * within the bus's delivery time) and on a short timer (token expiry).
 */
@Injectable()
export class SessionsService {
  private readonly sessions = new Map<string, LiveSession>();
  private readonly connectListeners: ConnectListener[] = [];

  constructor(private readonly directory: DeviceDirectory) {}

  add(clientId: string, session: LiveSession): void {
    this.sessions.set(clientId, session);
    for (const listener of this.connectListeners) void listener(session.identity);
  }

  /** Removes the session only if it is still this one (a takeover by a newer connection keeps the newer). */
  remove(clientId: string, session: LiveSession): void {
    if (this.sessions.get(clientId) === session) this.sessions.delete(clientId);
  }

  onConnect(listener: ConnectListener): void {
    this.connectListeners.push(listener);
  }

  get size(): number {
    return this.sessions.size;
  }

  identities(): DeviceIdentity[] {
    return [...this.sessions.values()].map((s) => s.identity);
  }

  /** Closes every session whose token expired or whose identity the registry revoked or superseded. */
  enforce(now: number): number {
    let closed = 0;
    for (const session of [...this.sessions.values()]) {
      const refusal = this.directory.refusal(session.identity, session.certificateKey);
      const reason: CloseReason | null =
        refusal ??
        (session.identity.expiresAt !== null && session.identity.expiresAt <= now ? 'token_expired' : null);
      if (reason) {
        session.close(reason);
        closed++;
      }
    }
    return closed;
  }

  closeAll(reason: CloseReason): void {
    for (const session of [...this.sessions.values()]) session.close(reason);
  }
}
