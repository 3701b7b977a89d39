import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { KAFKA_TOPICS, type DevicePresence } from '@edgefl/contracts';
import { TYPED_BUS, type KafkaTopicValues, type TypedBus } from '@edgefl/bus';
import { LOGGER } from '@edgefl/service-kit';
import type { Logger } from 'pino';
import type { DeviceIdentity } from '../authz/acl.js';
import type { CloseReason } from '../auth/sessions.service.js';

/** How a connection ended, as the presence event names it. */
export type DisconnectCause = 'clean' | 'keepalive' | 'dropped' | CloseReason;

const REASONS: Record<DisconnectCause, DevicePresence['reason']> = {
  clean: 'DISCONNECTED',
  dropped: 'DISCONNECTED',
  keepalive: 'KEEPALIVE_TIMEOUT',
  token_expired: 'AUTH_EXPIRED',
  revoked: 'AUTH_REJECTED',
  token_superseded: 'AUTH_REJECTED',
  key_rotated: 'AUTH_REJECTED',
  abuse: 'AUTH_REJECTED',
  bus_unavailable: 'DISCONNECTED',
  gateway_shutdown: 'GATEWAY_SHUTDOWN',
};

/**
 * Connects and disconnects become DevicePresence events (edgefl.device.presence.v1, compacted per device). A
 * device's own last will on its presence channel goes through the up-bridge like any message.
 */
@Injectable()
export class PresenceService {
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    @Inject(TYPED_BUS) private readonly bus: TypedBus<KafkaTopicValues>,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  online(identity: DeviceIdentity): void {
    this.emit(identity, 'ONLINE', 'CONNECTED');
  }

  offline(identity: DeviceIdentity, cause: DisconnectCause): void {
    this.emit(identity, 'OFFLINE', REASONS[cause]);
  }

  /** Resolves when every presence event emitted so far reached the bus (the drain waits for it). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private emit(identity: DeviceIdentity, status: DevicePresence['status'], reason: DevicePresence['reason']) {
    const value: DevicePresence = {
      eventId: randomUUID(),
      tenant: identity.tenant,
      deviceId: identity.deviceId,
      status,
      reason,
      timestamp: Date.now(),
    };
    const done = this.bus
      .publish(KAFKA_TOPICS.devicePresence.name, [{ value, headers: { device: identity.deviceId } }])
      .catch((error: unknown) =>
        this.logger.warn({ err: error, deviceId: identity.deviceId, status }, 'presence event not published'),
      )
      .finally(() => this.pending.delete(done));
    this.pending.add(done);
  }
}
