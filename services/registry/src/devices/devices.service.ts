import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { KAFKA_TOPICS, type DeviceLifecycleKind } from '@edgefl/contracts';
import { ed25519RawPublicKey, isKeyError, keyIdOf } from '@edgefl/keys';
import {
  CLOCK,
  type Clock,
  ConflictError,
  KEY_PROVIDER,
  LOGGER,
  NotFoundError,
  UnauthorizedError,
  UnprocessableError,
} from '@edgefl/service-kit';
import type { KeyProvider } from '@edgefl/keys';
import type { Logger } from 'pino';
import type { RegistryConfig } from '../config.js';
import { enqueueEvent } from '../events/outbox.js';
import { StoreConflictError } from '@edgefl/service-kit';
import type { Device } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import {
  AssertionError,
  DeviceTokenIssuer,
  tokensNotBeforeAt,
  verifyDeviceAssertion,
} from './device-tokens.js';

export interface RegisterDevice {
  id: string;
  publicKey: string;
  modelId?: string | undefined;
  group?: string | undefined;
  hardware?:
    | {
        class?: string | undefined;
        ramBytes?: number | undefined;
        firmware?: string | undefined;
        attributes?: Record<string, string> | undefined;
      }
    | undefined;
}

export type DevicePatch = Omit<RegisterDevice, 'id' | 'publicKey'>;

/** Parses a public key given as base64 of the raw 32 bytes or as PEM; returns base64 of the raw key. */
function normalisePublicKey(text: string): string {
  try {
    const input = text.trimStart().startsWith('-----BEGIN')
      ? text
      : new Uint8Array(Buffer.from(text, 'base64'));
    return Buffer.from(ed25519RawPublicKey(input)).toString('base64');
  } catch (error) {
    if (isKeyError(error)) throw new UnprocessableError(`publicKey: ${error.message}`);
    throw error;
  }
}

/** The device registry: identities (Ed25519 public key), hardware attributes, group, tenant; device tokens. */
@Injectable()
export class DevicesService implements OnModuleInit {
  readonly tokens: DeviceTokenIssuer;
  private readonly listeners: Array<(deviceId: string) => void> = [];

  constructor(
    @Inject(REGISTRY_STORE) private readonly store: RegistryStore,
    @Inject(KEY_PROVIDER) keys: KeyProvider,
    @Inject(CLOCK) private readonly clock: Clock,
    @Inject(REGISTRY_CONFIG) private readonly config: RegistryConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.tokens = new DeviceTokenIssuer(keys, config.own.deviceTokenTtlS);
  }

  async onModuleInit(): Promise<void> {
    await this.tokens.init();
    if (this.config.own.deviceAuth === 'off') {
      this.logger.warn(
        { deviceAuth: 'off' },
        'REGISTRY_DEVICE_AUTH=off: device manifests and artifact downloads are served without a device token',
      );
    }
  }

  /** Called with a device id whenever a device record changes (caches drop it). */
  onChange(listener: (deviceId: string) => void): void {
    this.listeners.push(listener);
  }

  private changed(id: string): void {
    for (const listener of this.listeners) listener(id);
  }

  private async checkModel(tenantId: string, modelId: string | undefined): Promise<void> {
    if (modelId === undefined) return;
    const model = await this.store.catalog.getModel(modelId);
    if (!model || model.tenantId !== tenantId)
      throw new UnprocessableError(`tenant ${tenantId} has no model ${modelId}`);
  }

  async register(tenantId: string, input: RegisterDevice): Promise<Device> {
    const publicKey = normalisePublicKey(input.publicKey);
    if (!(await this.store.catalog.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
    await this.checkModel(tenantId, input.modelId);
    const device: Device = {
      id: input.id,
      tenantId,
      publicKey,
      modelId: input.modelId ?? null,
      group: input.group ?? null,
      hardwareClass: input.hardware?.class ?? null,
      ramBytes: input.hardware?.ramBytes ?? null,
      firmware: input.hardware?.firmware ?? null,
      attributes: input.hardware?.attributes ?? {},
      currentVersion: null,
      lastSeenAt: null,
      createdAt: this.clock.now(),
      revokedAt: null,
      revokeReason: null,
      tokensNotBefore: null,
    };
    try {
      await this.store.transaction(async (tx) => {
        await tx.devices.insertDevice(device);
        await this.publish(tx, device, 'REGISTERED', {});
      });
    } catch (error) {
      if (error instanceof StoreConflictError)
        throw new ConflictError(`device ${input.id} is already registered`);
      throw error;
    }
    return device;
  }

  async get(id: string): Promise<Device> {
    const device = await this.store.devices.getDevice(id);
    if (!device) throw new NotFoundError(`no device ${id}`);
    return device;
  }

  async list(tenantId: string, limit: number, after: string): Promise<Device[]> {
    if (!(await this.store.catalog.getTenant(tenantId))) throw new NotFoundError(`no tenant ${tenantId}`);
    return this.store.devices.listDevices(tenantId, limit, after);
  }

  async update(id: string, patch: DevicePatch): Promise<Device> {
    const device = await this.get(id);
    await this.checkModel(device.tenantId, patch.modelId);
    await this.store.transaction(async (tx) => {
      await tx.devices.updateDevice(id, {
        ...(patch.modelId !== undefined ? { modelId: patch.modelId } : {}),
        ...(patch.group !== undefined ? { group: patch.group } : {}),
        ...(patch.hardware?.class !== undefined ? { hardwareClass: patch.hardware.class } : {}),
        ...(patch.hardware?.ramBytes !== undefined ? { ramBytes: patch.hardware.ramBytes } : {}),
        ...(patch.hardware?.firmware !== undefined ? { firmware: patch.hardware.firmware } : {}),
        ...(patch.hardware?.attributes !== undefined ? { attributes: patch.hardware.attributes } : {}),
      });
      await this.publish(tx, device, 'UPDATED', {});
    });
    this.changed(id);
    return this.get(id);
  }

  /**
   * Revokes a device for good: it gets no further token, and every token it holds stops working at the registry at
   * once (and at the gateway, which consumes the REVOKED event). Revoking twice answers 409.
   */
  async revoke(id: string, reason: string | undefined): Promise<Device> {
    const device = await this.get(id);
    if (device.revokedAt !== null) throw new ConflictError(`device ${id} was revoked before`);
    const now = this.clock.now();
    const tokensNotBefore = tokensNotBeforeAt(now, device.tokensNotBefore);
    await this.store.transaction(async (tx) => {
      await tx.devices.updateDevice(id, { revokedAt: now, revokeReason: reason ?? null, tokensNotBefore });
      await this.publish(tx, device, 'REVOKED', { reason: reason ?? null, tokensNotBefore });
    });
    this.changed(id);
    this.logger.info({ deviceId: id, tenant: device.tenantId }, 'device revoked');
    return this.get(id);
  }

  /**
   * Replaces a device's key. The caller is an admin, or the device itself proving possession of its current key with
   * a one-time assertion (as for a token). Tokens issued before the rotation stop working; the old key no longer
   * authenticates.
   */
  async rotateKey(
    id: string,
    input: { publicKey: string; assertion?: string | undefined },
    byAdmin: boolean,
  ): Promise<Device> {
    const device = byAdmin
      ? await this.get(id)
      : await this.authenticate(id, input.assertion, 'key rotation needs the admin token or an assertion');
    if (device.revokedAt !== null)
      throw new ConflictError(`device ${id} is revoked; register a new identity`);
    const publicKey = normalisePublicKey(input.publicKey);
    if (publicKey === device.publicKey)
      throw new UnprocessableError('publicKey: the device already has this key');
    const now = this.clock.now();
    const tokensNotBefore = tokensNotBeforeAt(now, device.tokensNotBefore);
    await this.store.transaction(async (tx) => {
      await tx.devices.updateDevice(id, { publicKey, tokensNotBefore });
      await this.publish(tx, { ...device, publicKey }, 'KEY_ROTATED', {
        previousKeyId: keyIdOf(Buffer.from(device.publicKey, 'base64')),
        tokensNotBefore,
      });
    });
    this.changed(id);
    this.logger.info({ deviceId: id, tenant: device.tenantId, byAdmin }, 'device key rotated');
    return this.get(id);
  }

  /** Records a DeviceLifecycle event in the outbox of the caller's transaction (published after it commits). */
  private async publish(
    tx: RegistryStore,
    device: Device,
    event: DeviceLifecycleKind,
    extra: { reason?: string | null; previousKeyId?: string; tokensNotBefore?: number },
  ): Promise<void> {
    const raw = Buffer.from(device.publicKey, 'base64');
    const revoked = event === 'REVOKED';
    const now = this.clock.now();
    await enqueueEvent(
      tx,
      KAFKA_TOPICS.deviceLifecycle.name,
      {
        eventId: randomUUID(),
        tenant: device.tenantId,
        deviceId: device.id,
        event,
        publicKey: revoked ? null : raw.toString('base64url'),
        keyId: revoked ? null : keyIdOf(raw),
        previousKeyId: extra.previousKeyId ?? null,
        reason: extra.reason ?? null,
        tokensNotBefore: extra.tokensNotBefore ?? null,
        timestamp: now,
      },
      device.id,
      now,
    );
  }

  /**
   * A device proving possession of its registered key with a one-time assertion. Unknown, revoked and unverifiable
   * all answer the same 401, so the endpoint does not reveal which ids exist.
   */
  private async authenticate(id: string, assertion: string | undefined, missing: string): Promise<Device> {
    if (assertion === undefined) throw new UnauthorizedError(missing);
    const device = await this.store.devices.getDevice(id);
    if (!device || device.revokedAt !== null)
      throw new UnauthorizedError('the device assertion does not verify');
    const now = this.clock.now();
    let checked: { jti: string; expiresAt: number };
    try {
      checked = await verifyDeviceAssertion(device, assertion, now);
    } catch (error) {
      if (error instanceof AssertionError) throw new UnauthorizedError(error.message);
      throw error;
    }
    if (!(await this.store.devices.useAssertion(checked.jti, id, checked.expiresAt, now))) {
      throw new UnauthorizedError('this assertion was used before (replay)');
    }
    return device;
  }

  /** Exchanges a device's signed assertion for a short-lived MQTT token (each assertion works once). */
  async issueToken(
    id: string,
    assertion: string,
  ): Promise<{ token: string; tokenType: 'Bearer'; expiresAt: number }> {
    const device = await this.authenticate(id, assertion, 'an assertion is required');
    const now = this.clock.now();
    await this.store.devices.updateDevice(id, { lastSeenAt: now });
    const { token, expiresAt } = await this.tokens.issue(device, now);
    return { token, tokenType: 'Bearer', expiresAt };
  }
}
