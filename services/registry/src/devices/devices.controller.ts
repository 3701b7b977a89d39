import { Controller, Get, HttpCode, Patch, Post } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import {
  AdminOnly,
  DocBody,
  DocIdParams,
  DocQuery,
  Id,
  IdParam,
  ValidBody,
  ValidQuery,
} from '@edgefl/service-kit';
import type { JWK } from 'jose';
import { z } from 'zod';
import type { Device } from '../storage/records.js';
import { DevicesService } from './devices.service.js';

const Hardware = z.strictObject({
  class: z.string().min(1).max(64).optional(),
  ramBytes: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).optional(),
  firmware: z.string().min(1).max(64).optional(),
  attributes: z.record(z.string().max(64), z.string().max(256)).optional(),
});
const RegisterDevice = z.strictObject({
  id: Id,
  publicKey: z
    .string()
    .min(1)
    .max(1024)
    .describe('Ed25519 public key: base64 of the raw 32 bytes, or PEM (SPKI)'),
  modelId: Id.optional(),
  group: z.string().min(1).max(64).optional(),
  hardware: Hardware.optional(),
});
const UpdateDevice = RegisterDevice.omit({ id: true, publicKey: true });
const TokenRequest = z.strictObject({
  assertion: z
    .string()
    .min(1)
    .max(4096)
    .describe(
      'A JWT the device signed (EdDSA) with sub = its id, aud = "edgefl-registry", iat, exp (≤ 5 min), jti',
    ),
});
const Limit = z.coerce.number().int().min(1).max(1000).default(100);
const After = z.string().max(64).default('');

@ApiTags('devices')
@Controller('v1')
export class DevicesController {
  constructor(private readonly devices: DevicesService) {}

  @Post('tenants/:tenant/devices')
  @AdminOnly()
  @HttpCode(201)
  @ApiOperation({ summary: 'Register a device (public key, hardware attributes, group) to a tenant' })
  @DocIdParams('tenant')
  @DocBody(RegisterDevice)
  register(
    @IdParam('tenant') tenant: string,
    @ValidBody(RegisterDevice) body: z.infer<typeof RegisterDevice>,
  ): Promise<Device> {
    return this.devices.register(tenant, body);
  }

  @Get('tenants/:tenant/devices')
  @AdminOnly()
  @ApiOperation({ summary: "List a tenant's devices (keyset pagination by id)" })
  @DocIdParams('tenant')
  @DocQuery('limit', Limit)
  @DocQuery('after', After)
  list(
    @IdParam('tenant') tenant: string,
    @ValidQuery('limit', Limit) limit: number,
    @ValidQuery('after', After) after: string,
  ): Promise<Device[]> {
    return this.devices.list(tenant, limit, after);
  }

  @Get('devices/:device')
  @AdminOnly()
  @ApiOperation({ summary: 'Get a device' })
  @DocIdParams('device')
  get(@IdParam('device') device: string): Promise<Device> {
    return this.devices.get(device);
  }

  @Patch('devices/:device')
  @AdminOnly()
  @ApiOperation({ summary: "Change a device's model, group or hardware attributes" })
  @DocIdParams('device')
  @DocBody(UpdateDevice)
  update(
    @IdParam('device') device: string,
    @ValidBody(UpdateDevice) body: z.infer<typeof UpdateDevice>,
  ): Promise<Device> {
    return this.devices.update(device, body);
  }

  @Post('devices/:device/token')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a device-signed assertion for a short-lived EdDSA JWT for MQTT' })
  @DocIdParams('device')
  @DocBody(TokenRequest)
  token(@IdParam('device') device: string, @ValidBody(TokenRequest) body: z.infer<typeof TokenRequest>) {
    return this.devices.issueToken(device, body.assertion);
  }

  @Get('device-tokens/jwks.json')
  @ApiOperation({ summary: 'Public keys (JWKS) that verify device tokens' })
  jwks(): Promise<{ keys: JWK[] }> {
    return this.devices.tokens.jwks();
  }
}
