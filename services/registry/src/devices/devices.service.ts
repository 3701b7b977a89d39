import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { ed25519RawPublicKey, isKeyError } from '@edgefl/keys';
import {
  CLOCK,
  type Clock,
  ConflictError,
  KEY_PROVIDER,
  NotFoundError,
  UnauthorizedError,
  UnprocessableError,
} from '@edgefl/service-kit';
import type { KeyProvider } from '@edgefl/keys';
import type { RegistryConfig } from '../config.js';
import { StoreConflictError } from '../storage/errors.js';
import type { Device } from '../storage/records.js';
import type { RegistryStore } from '../storage/registry-store.js';
import { REGISTRY_CONFIG, REGISTRY_STORE } from '../tokens.js';
import { AssertionError, DeviceTokenIssuer, verifyDeviceAssertion } from './device-tokens.js';

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
    @Inject(REGISTRY_CONFIG) config: RegistryConfig,
  ) {
    this.tokens = new DeviceTokenIssuer(keys, config.own.deviceTokenTtlS);
  }

  async onModuleInit(): Promise<void> {
    await this.tokens.init();
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
    };
    try {
      await this.store.devices.insertDevice(device);
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
    await this.store.devices.updateDevice(id, {
      ...(patch.modelId !== undefined ? { modelId: patch.modelId } : {}),
      ...(patch.group !== undefined ? { group: patch.group } : {}),
      ...(patch.hardware?.class !== undefined ? { hardwareClass: patch.hardware.class } : {}),
      ...(patch.hardware?.ramBytes !== undefined ? { ramBytes: patch.hardware.ramBytes } : {}),
      ...(patch.hardware?.firmware !== undefined ? { firmware: patch.hardware.firmware } : {}),
    });
    this.changed(id);
    return this.get(id);
  }

  /** Exchanges a device's signed assertion for a short-lived MQTT token (each assertion works once). */
  async issueToken(
    id: string,
    assertion: string,
  ): Promise<{ token: string; tokenType: 'Bearer'; expiresAt: number }> {
    const device = await this.store.devices.getDevice(id);
    // the same answer for an unknown device and a bad signature: the endpoint does not reveal which ids exist
    if (!device) throw new UnauthorizedError('the device assertion does not verify');
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
    await this.store.devices.updateDevice(id, { lastSeenAt: now });
    const { token, expiresAt } = await this.tokens.issue(device, now);
    return { token, tokenType: 'Bearer', expiresAt };
  }
}
